"""The foundation of every stage: settings, errors, statuses, database, models, migrations."""
