"""digest: a newsletter/digest email generator.

Pipeline: stories -> edition -> render (once) -> personalize -> delivery ledger -> SMTP.
"""

__version__ = "0.1.0"
