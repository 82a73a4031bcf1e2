"""Settings: the only place that reads the environment.

Read once at an entry point (``Settings()``) and passed down. Values come from
``DIGEST_*`` environment variables (plus ``DATABASE_URL`` and ``PORT``) and,
optionally, a TOML file named by ``DIGEST_CONFIG``.
"""

from __future__ import annotations

import os
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, Field, PrivateAttr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from digest.core.errors import ConfigError, DigestError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from digest.core.signing import KeyOrigin

DEFAULT_SQLITE_NAME = "digest.db"
# The values of subscribers.status.Cadence (core imports nothing above it).
CADENCES = ("daily", "weekly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def normalize_database_url(url: str) -> str:
    """Accept Heroku-style ``postgres://`` and pick the psycopg 3 driver for PostgreSQL."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Settings(BaseSettings):
    """Every knob of digest; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="DIGEST_", extra="ignore", populate_by_name=True)

    var_dir: Path = Path("var")
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DIGEST_DATABASE_URL", "DATABASE_URL"),
    )
    smtp_url: str = "smtp://127.0.0.1:1025"
    smtp_timeout: float = 30.0
    from_address: str = Field(
        default="Digest <digest@localhost>",
        validation_alias=AliasChoices("DIGEST_FROM", "DIGEST_FROM_ADDRESS"),
    )
    newsletter_name: str = "The Digest"
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    schedule: str = "0 7 * * *"
    timezone: str = "UTC"
    admin_token: str = ""
    templates_dir: Path | None = None
    port: int = Field(
        default=8000, ge=1, le=65535, validation_alias=AliasChoices("PORT", "DIGEST_PORT")
    )
    # rendering and MIME
    lang: str = "en"
    postal_address: str = ""
    list_id: str = ""
    unsubscribe_mailto: str = ""
    feedback_id: str = ""
    dkim_key: str = ""
    dkim_selector: str = ""
    dkim_domain: str = ""
    # visible characters of a story body in the digest (cut at a word); 0 = bodies left out
    body_max_chars: int = Field(default=600, ge=0, le=200_000)
    # subscribers
    check_deliverability: bool = False  # DNS lookups when validating addresses
    smtputf8: bool = False  # the relay takes SMTPUTF8: accept non-ASCII local parts
    confirm_interval_minutes: float = Field(default=10.0, ge=0)  # confirmation mails per address
    default_cadence: str = "daily"  # the cadence of new subscribers: daily or weekly
    weekly_day: int = 0  # weekly digests go out on this day: 0 = Monday … 6 = Sunday
    # delivery
    smtp_connections: int = Field(default=4, ge=1, le=64)  # parallel SMTP connections
    smtp_messages_per_connection: int = Field(default=1000, ge=1)  # then reconnect
    smtp_ca_file: Path | None = None  # trust this CA (PEM) in addition to the system's
    rate_limit: float = Field(default=0.0, ge=0)  # messages/second over all connections; 0 = none
    hourly_limit: int = Field(default=0, ge=0)  # messages per rolling hour; 0 = none
    max_attempts: int = Field(default=5, ge=1)  # tries on 4xx/disconnects before giving up
    backoff_seconds: float = Field(default=1.0, ge=0)  # first backoff; doubles, with jitter
    bounce_limit: int = Field(default=3, ge=0)  # hard bounces before a subscriber is bounced
    claim_batch: int = Field(default=200, ge=1)  # rows claimed per transaction
    lease_seconds: float = Field(default=120.0, gt=0)  # claim lease, renewed while sending
    queue: str = Field(default="none", pattern="^(none|procrastinate)$")  # workers take chunks
    queue_chunk: int = Field(default=500, ge=1)  # rows per "send chunk of edition E" task
    # sources and feeds
    feed_timeout: float = Field(default=15.0, gt=0)  # seconds for a whole fetch, redirects and body
    feed_max_bytes: int = Field(default=5_000_000, ge=1024)  # larger responses are refused
    feed_max_redirects: int = Field(default=5, ge=0)  # then a redirect loop is assumed
    feed_user_agent: str = ""  # empty: "digest/<version> (+<base_url>)"
    feed_allow_private: bool = False  # let feeds reach loopback/private/link-local addresses
    # schedule
    min_stories: int = Field(default=1, ge=1)  # fewer new stories at a slot: no edition
    misfire_grace_seconds: int = Field(default=3600, ge=1)  # a late clock still runs the slot
    local_time: bool = False  # each subscriber gets the slot at its wall time in their zone
    feed_interval_minutes: int = Field(default=30, ge=0)  # clock polls feeds; 0 = never
    # web
    web_max_body_bytes: int = Field(default=5_000_000, ge=1024)  # larger request bodies: 413
    archive_noindex: bool = False  # ask search engines not to index the public archive
    allowed_hosts: str = ""  # Host names served besides loopback and BASE_URL's, comma-separated
    subscribe_limit_per_client: int = Field(default=10, ge=0)  # POST /subscribe per client/hour
    subscribe_limit: int = Field(default=300, ge=0)  # POST /subscribe per hour, all clients
    login_max_failures: int = Field(default=5, ge=1)  # wrong admin tokens per client/15 minutes
    # the signing key read from the database (see load_signing_key); never a setting
    _database_key: bytes | None = PrivateAttr(default=None)

    @field_validator(
        "lang",
        "postal_address",
        "list_id",
        "unsubscribe_mailto",
        "feedback_id",
        "dkim_selector",
        "feed_user_agent",
    )
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if any(c in value for c in "\r\n\0"):
            raise ValueError("must be one line (no CR, LF or NUL)")
        return value.strip()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("DIGEST_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise ConfigError("DIGEST_CONFIG", f"no such file: {config_file}")
            toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file)
            unknown = sorted(set(toml.toml_data) - _known_keys(settings_cls))
            if unknown:  # a misspelt key would otherwise be ignored without a word
                raise ConfigError(
                    "DIGEST_CONFIG",
                    f"unknown setting {unknown[0]!r} in {config_file}"
                    + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""),
                )
            sources.append(toml)
        return tuple(sources)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _check_allowed_hosts(cls, value: Any) -> str:
        if isinstance(value, list):  # a TOML list works as well as a comma-separated string
            value = ",".join(map(str, value))
        if not isinstance(value, str):
            raise ValueError("expected comma-separated host names")
        names = []
        for given in filter(None, (part.strip().lower() for part in value.split(","))):
            bracketed = given.startswith("[") and given.endswith("]")  # an IPv6 address
            name = given[1:-1] if bracketed else given
            if not name or any(c in name for c in "/@[] \t\r\n\0" + ("" if bracketed else ":")):
                raise ValueError(f"expected host names without scheme, port or path: {given!r}")
            names.append(name)
        return ",".join(names)

    @field_validator("default_cadence", mode="before")
    @classmethod
    def _check_cadence(cls, value: Any) -> Any:
        word = value.strip().lower() if isinstance(value, str) else value
        if word not in CADENCES:
            raise ValueError(f"must be one of {', '.join(CADENCES)}, found {value!r}")
        return word

    @field_validator("weekly_day", mode="before")
    @classmethod
    def _check_weekly_day(cls, value: Any) -> Any:
        """A day name (``monday``, ``Mon``) or its number, 0 = Monday … 6 = Sunday."""
        if isinstance(value, str):
            word = value.strip().lower()
            day = next((n for n, d in enumerate(WEEKDAYS) if word in (d, d[:3])), None)
            if day is not None:
                return day
            if not word.isdigit():
                raise ValueError(f"must be a day name (monday … sunday) or 0-6, found {value!r}")
            value = int(word)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
            raise ValueError(f"must be a day name (monday … sunday) or 0-6, found {value!r}")
        return value

    @field_validator("from_address")
    @classmethod
    def _check_from(cls, value: str) -> str:
        name, addr = parseaddr(value)
        if "@" not in addr or any(c in value for c in "\r\n\0"):
            raise ValueError(f"not a valid From address: {value!r}")
        Address(display_name=name, addr_spec=addr)
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://: {value!r}")
        return value.rstrip("/")

    # -- derived values -------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{self.var_dir / DEFAULT_SQLITE_NAME}"

    @property
    def allowed_host_names(self) -> frozenset[str]:
        """Host names served besides loopback and ``BASE_URL``'s: ``DIGEST_ALLOWED_HOSTS``."""
        return frozenset(name for name in self.allowed_hosts.split(",") if name)

    @property
    def sender(self) -> Address:
        name, addr = parseaddr(self.from_address)
        return Address(display_name=name, addr_spec=addr)

    def load_signing_key(self, engine: Engine) -> KeyOrigin | None:
        """Read the database's signing key for this process (once, after migrations).

        With none stored yet it is written first: ``var/secret_key`` of an older
        install if there is one, else a new random key. Returns where it came from,
        or None when ``DIGEST_SECRET_KEY`` is set (the database key is then unused).
        """
        if self.secret_key:
            return None
        from digest.core.signing import KeyOrigin, database_key

        if self._database_key is not None:
            return KeyOrigin.STORED
        self._database_key, origin = database_key(engine, self.var_dir)
        return origin

    def signing_key(self) -> bytes:
        """The token-signing secret: ``DIGEST_SECRET_KEY``, else the database's key."""
        if self.secret_key:
            return self.secret_key.encode()
        if self._database_key is None:
            raise DigestError("no signing key read from the database (load_signing_key)")
        return self._database_key

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict with secrets hidden, for display."""
        data = self.model_dump()
        for key in ("secret_key", "admin_token", "dkim_key"):
            if data.get(key):
                data[key] = "***"
        for key in ("database_url", "smtp_url"):
            data[key] = redact_url(str(data[key]))
        return data


def redact_url(url: str) -> str:
    """Hide the password of ``scheme://user:pass@host`` URLs."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


class EmbeddedSettings(Settings):
    """Settings from the given values and built-in defaults only: no environment, no file.

    ``digest demo`` uses these so it can never reach a real database or mail server.
    """

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _known_keys(settings_cls: type[BaseSettings]) -> set[str]:
    """The keys a TOML config may use: field names and their other spellings."""
    keys: set[str] = set()
    for name, field in settings_cls.model_fields.items():
        keys.add(name)
        alias = field.validation_alias
        choices = getattr(alias, "choices", None) or ([alias] if isinstance(alias, str) else [])
        for choice in choices:
            if isinstance(choice, str):
                keys |= {choice, choice.lower(), choice.lower().removeprefix("digest_")}
    return keys


def load_settings(embedded: bool = False, **overrides: Any) -> Settings:
    """Read settings, turning validation problems into one-line ``ConfigError``s."""
    import tomllib

    from pydantic import ValidationError

    try:
        return (EmbeddedSettings if embedded else Settings)(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("DIGEST_CONFIG", f"not valid TOML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]).upper() or "SETTINGS"
        name = (
            loc if loc.startswith("DIGEST_") or loc in {"DATABASE_URL", "PORT"} else f"DIGEST_{loc}"
        )
        raise ConfigError(name, err["msg"]) from None
