"""Settings: the only place that reads the environment.

Read once at an entry point (``Settings()``) and passed down. Values come from
``DIGEST_*`` environment variables (plus ``DATABASE_URL`` and ``PORT``) and,
optionally, a TOML file named by ``DIGEST_CONFIG``.
"""

from __future__ import annotations

import os
import re
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, PrivateAttr, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
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
# What would end a header line, here or where the email package folds one.
_LINE_BREAKS = re.compile("[\r\n\0\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_ASCII_ADDRESS = re.compile(r"[!-;=?-~]+@[!-;=?-~]+")  # printable ASCII, no < > or space
_DNS_NAME = re.compile(
    r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?)*\.?"
)
DAY = 86_400  # seconds: the longest timeout, lease or backoff
YEAR_MINUTES = 366 * 24 * 60
MANY = 1_000_000_000  # counts and rates: far beyond any real use, within an SQL integer
MAX_BYTES = 2**40


def normalize_database_url(url: str) -> str:
    """Accept Heroku-style ``postgres://`` and pick the psycopg 3 driver for PostgreSQL."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Settings(BaseSettings):
    """Every knob of digest; see the README's configuration table."""

    # Every number has bounds: a value beyond what a timer, a timedelta or an SQL integer
    # holds is one line naming the setting here, not a traceback deep in a send.
    model_config = SettingsConfigDict(
        env_prefix="DIGEST_", extra="ignore", populate_by_name=True, allow_inf_nan=False
    )

    var_dir: Path = Path("var")
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DIGEST_DATABASE_URL", "DATABASE_URL"),
    )
    smtp_url: str = "smtp://127.0.0.1:1025"
    smtp_timeout: float = Field(default=30.0, gt=0, le=DAY)
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
    # minutes between confirmation mails to one address
    confirm_interval_minutes: float = Field(default=10.0, ge=0, le=YEAR_MINUTES)
    default_cadence: str = "daily"  # the cadence of new subscribers: daily or weekly
    weekly_day: int = 0  # weekly digests go out on this day: 0 = Monday … 6 = Sunday
    # delivery
    smtp_connections: int = Field(default=4, ge=1, le=64)  # parallel SMTP connections
    smtp_messages_per_connection: int = Field(default=1000, ge=1, le=MANY)  # then reconnect
    smtp_ca_file: Path | None = None  # trust this CA (PEM) in addition to the system's
    # messages/second over all connections; 0 = none
    rate_limit: float = Field(default=0.0, ge=0, le=MANY)
    hourly_limit: int = Field(default=0, ge=0, le=MANY)  # messages per rolling hour; 0 = none
    max_attempts: int = Field(default=5, ge=1, le=1000)  # tries on 4xx/disconnects before giving up
    backoff_seconds: float = Field(default=1.0, ge=0, le=DAY)  # first backoff; doubles, with jitter
    # hard bounces before a subscriber is bounced
    bounce_limit: int = Field(default=3, ge=0, le=1000)
    claim_batch: int = Field(default=200, ge=1, le=100_000)  # rows claimed per transaction
    lease_seconds: float = Field(default=120.0, ge=1, le=DAY)  # claim lease, renewed while sending
    queue: str = Field(default="none", pattern="^(none|procrastinate)$")  # workers take chunks
    queue_chunk: int = Field(default=500, ge=1, le=MANY)  # rows per "send chunk of edition E" task
    # sources and feeds; seconds for a whole fetch, redirects and body
    feed_timeout: float = Field(default=15.0, gt=0, le=DAY)
    # larger responses are refused
    feed_max_bytes: int = Field(default=5_000_000, ge=1024, le=MAX_BYTES)
    feed_max_redirects: int = Field(default=5, ge=0, le=100)  # then a redirect loop is assumed
    feed_user_agent: str = ""  # empty: "digest/<version> (+<base_url>)"
    feed_allow_private: bool = False  # let feeds reach loopback/private/link-local addresses
    # schedule
    min_stories: int = Field(default=1, ge=1, le=MANY)  # fewer new stories at a slot: no edition
    # a late clock still runs the slot
    misfire_grace_seconds: int = Field(default=3600, ge=1, le=YEAR_MINUTES * 60)
    local_time: bool = False  # each subscriber gets the slot at its wall time in their zone
    # clock polls feeds; 0 = never
    feed_interval_minutes: int = Field(default=30, ge=0, le=YEAR_MINUTES)
    # bounces: the mailbox returned mail arrives in (maildir://, mbox://, imaps://)
    bounce_mailbox: str = ""
    # the clock scans it this often; 0 = never
    bounce_interval_minutes: int = Field(default=10, ge=0, le=YEAR_MINUTES)
    bounce_address: str = ""  # VERP return path local+TOKEN@domain; empty: the From address
    soft_bounce_limit: int = Field(default=3, ge=1, le=1000)
    soft_bounce_days: int = Field(default=14, ge=1, le=3650)
    inbound_secret: str = ""  # Bearer secret of POST /inbound/mail; empty: the route is 404
    # web: larger request bodies get 413
    web_max_body_bytes: int = Field(default=5_000_000, ge=1024, le=MAX_BYTES)
    archive_noindex: bool = False  # ask search engines not to index the public archive
    allowed_hosts: str = ""  # Host names served besides loopback and BASE_URL's, comma-separated
    # POST /subscribe per client and hour, and per hour from all clients
    subscribe_limit_per_client: int = Field(default=10, ge=0, le=MANY)
    subscribe_limit: int = Field(default=300, ge=0, le=MANY)
    login_max_failures: int = Field(default=5, ge=1, le=MANY)  # wrong tokens per client/15 min
    # the signing key read from the database (see load_signing_key); never a setting
    _database_key: bytes | None = PrivateAttr(default=None)

    @field_validator(
        "newsletter_name",
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
        if _LINE_BREAKS.search(value):
            raise ValueError("must be one line (no CR, LF, NUL or other line break)")
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
            # Each key under its field's name: "from" (as the README spells DIGEST_FROM)
            # is no alias pydantic knows, and would otherwise be dropped without a word.
            by_field = {
                name: toml.toml_data[key]
                for name, info in settings_cls.model_fields.items()
                for key in _keys(name, info)
                if key in toml.toml_data
            }
            sources.append(InitSettingsSource(settings_cls, init_kwargs=by_field))
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

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError, below
            raise ValueError(
                f"not a time zone: {value!r} (use a name like Europe/Berlin)"
            ) from None
        except KeyError:
            raise ValueError(f"no time zone {value!r} (use a name like Europe/Berlin)") from None
        return value

    @field_validator("templates_dir")
    @classmethod
    def _check_templates_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():  # else the built-ins, without a word
            raise ValueError(f"not a folder: {str(value)!r}")
        return value

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _check_mailto(cls, value: str) -> str:
        if value and not _ASCII_ADDRESS.fullmatch(value):
            raise ValueError(f"not an ASCII address like unsubscribe@example.com: {value!r}")
        return value

    @field_validator("bounce_address")
    @classmethod
    def _check_bounce_address(cls, value: str) -> str:
        if value and (not _ASCII_ADDRESS.fullmatch(value) or "+" in value.split("@")[0]):
            raise ValueError(
                f"not an ASCII address without '+' like bounces@example.org: {value!r}"
            )
        return value

    @field_validator("dkim_selector", "dkim_domain")
    @classmethod
    def _check_dns_label(cls, value: str) -> str:
        if value and not _DNS_NAME.fullmatch(value):
            raise ValueError(f"not a DNS name (ASCII; IDNs as xn-- labels): {value!r}")
        return value

    @field_validator("from_address")
    @classmethod
    def _check_from(cls, value: str) -> str:
        name, addr = parseaddr(value)
        local, _, domain = addr.rpartition("@")
        if (
            _LINE_BREAKS.search(value)
            or not _LOCAL_PART.fullmatch(local)
            or not _DNS_NAME.fullmatch(domain)
        ):
            raise ValueError(
                f"not a valid From address: {value!r} (like News <news@example.org>;"
                " an IDN domain as xn-- labels)"
            )
        try:
            Address(display_name=name, addr_spec=addr)
        except (ValueError, IndexError, HeaderParseError):
            raise ValueError(f"not a valid From address: {value!r}") from None
        return value

    @field_validator("smtp_url", "bounce_mailbox")
    @classmethod
    def _check_splits(cls, value: str) -> str:
        """A URL the transport and the mailbox reader can take apart (the scheme and the
        rest are checked where they are used, naming the setting)."""
        try:
            urlsplit(value)
        except ValueError as exc:
            raise ValueError(f"not a URL: {redact_url(value)!r} ({exc})") from None
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://: {value!r}")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        except ValueError as exc:
            raise ValueError(f"not a URL: {value!r} ({exc})") from None
        if not parts.hostname or any(c.isspace() for c in value):
            raise ValueError(f"not a URL with a host: {value!r}")
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
        for key in ("secret_key", "admin_token", "dkim_key", "inbound_secret"):
            if data.get(key):
                data[key] = "***"
        for key in ("database_url", "smtp_url", "bounce_mailbox"):
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
    return {key for name, info in settings_cls.model_fields.items() for key in _keys(name, info)}


def _aliases(info: Any) -> list[str]:
    alias = info.validation_alias
    choices = getattr(alias, "choices", None) or ([alias] if isinstance(alias, str) else [])
    return [c for c in choices if isinstance(c, str)]


def _names(field: str, info: Any) -> list[str]:
    """The environment variables a field is read from, the first being its usual name."""
    return _aliases(info) or [f"DIGEST_{field.upper()}"]


def _keys(field: str, info: Any) -> set[str]:
    """The TOML keys of one field."""
    keys = {field}
    for alias in _aliases(info):
        keys |= {alias, alias.lower(), alias.lower().removeprefix("digest_")}
    return keys


def load_settings(embedded: bool = False, **overrides: Any) -> Settings:
    """Read settings, turning validation problems into one-line ``ConfigError``s."""
    import tomllib

    from pydantic import ValidationError

    cls = EmbeddedSettings if embedded else Settings
    try:
        return cls(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("DIGEST_CONFIG", f"not valid TOML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = str(err["loc"][0]) if err["loc"] else ""
        raise ConfigError(_where(cls, loc, embedded, overrides), err["msg"]) from None


def _where(cls: type[Settings], loc: str, embedded: bool, overrides: dict[str, Any]) -> str:
    """Where a bad value came from: the variable set in the environment, else the key of
    the TOML file, else the setting's usual variable name."""
    import tomllib

    field = next((n for n, f in cls.model_fields.items() if loc == n or loc in _names(n, f)), None)
    if field is None:
        return loc.upper() or "SETTINGS"
    names = _names(field, cls.model_fields[field])
    if field in overrides or embedded:
        return names[0]
    environ = {key.upper() for key in os.environ}
    for name in names:
        if name.upper() in environ:
            return name
    config_file = os.environ.get("DIGEST_CONFIG")
    if config_file:
        with open(config_file, "rb") as fh:
            data = tomllib.load(fh)
        for key in data:
            if key in _keys(field, cls.model_fields[field]):
                return f"{key!r} in {config_file} ({names[0]})"
    return names[0]
