"""The one settings object: every knob of both stacks, typed, frozen, read from the environment.

Variables use the prefix ``LAKEHOUSE_`` and ``__`` between nested keys, e.g.
``LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9092`` or ``LAKEHOUSE_PRODUCTS=["BTC-USD","ETH-USD"]``.
Layers, highest first: process environment, ``.env`` in the working directory, then
``<data_dir>/credentials.env`` (the credentials ``lakehouse up`` generates for the embedded stack),
then the defaults below. ``.env.example`` documents every variable. No other module reads
``os.environ`` for configuration: they take a ``Settings`` (or one of its sections) as an argument.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "LAKEHOUSE_"
DEFAULT_DATA_DIR = Path(".lakehouse")
CREDENTIALS_FILE = "credentials.env"
MAX_BINANCE_STREAMS = 1024


def split_list(value: object) -> object:
    """A list variable written either as ``A,B`` or as a JSON list (what ``to_environment`` writes)."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            return json.loads(value)
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:19092"
    trades_topic: str = "crypto.trades"
    # CoinGecko reference prices (``lakehouse ingest --source coingecko``): a topic of their own
    reference_topic: str = "crypto.reference_prices"
    dlq_topic: str = "crypto.trades.dlq"
    partitions: int = Field(4, ge=1)
    replication_factor: int = Field(1, ge=1)
    retention_ms: int = Field(7 * 24 * 3600 * 1000, description="trades topic retention")
    dlq_retention_ms: int = Field(30 * 24 * 3600 * 1000)
    # producer back-pressure: librdkafka's local queue bound (messages)
    producer_queue_max_messages: int = Field(100_000, ge=1)
    producer_linger_ms: int = Field(20, ge=0)
    # noida-db keeps the batches as they arrive: zstd ones held about a third of lz4's broker memory
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "zstd"
    max_message_bytes: int = Field(1_000_000, ge=1024)
    # librdkafka retries a send across broker restarts until this expires (its default)
    producer_message_timeout_ms: int = Field(300_000, ge=1)
    # how clients authenticate (infrastructure/kafka.py builds every client from these): the
    # compose stack's broker requires SASL/PLAIN; the embedded noida-db accepts any (or no)
    # credentials, so there loopback-only binding is what protects it
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = Field(None, description="CA bundle for SSL / SASL_SSL")

    def sasl_credentials(self) -> tuple[str, str]:
        """The SASL user and password, or an error that names the variables to set."""
        if self.sasl_username is None or self.sasl_password is None:
            raise MissingSetting(
                f"{ENV_PREFIX}KAFKA__SASL_USERNAME and {ENV_PREFIX}KAFKA__SASL_PASSWORD",
                f"security_protocol {self.security_protocol} needs SASL credentials",
            )
        return self.sasl_username, self.sasl_password.get_secret_value()


class CoinbaseSettings(_Section):
    ws_url: str = "wss://ws-feed.exchange.coinbase.com"
    rest_url: str = "https://api.exchange.coinbase.com"
    subscribe_timeout_s: float = Field(
        5.0, gt=0, description="Coinbase closes sockets that do not subscribe in 5 s"
    )
    heartbeat_timeout_s: float = Field(5.0, gt=0, description="no message for this long -> reconnect")
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    rest_rate_limit_per_s: float = Field(10.0, gt=0, description="public REST limit")
    rest_page_limit: int = Field(1000, ge=1, le=1000)
    max_frame_bytes: int = Field(64 * 1024, ge=1024, description="larger frames are dead-lettered")


class BinanceSettings(_Section):
    """Binance spot trades (``lakehouse ingest --source binance``): the venue's documented rules as
    defaults (github.com/binance/binance-spot-api-docs, web-socket-streams.md and rest-api.md)."""

    ws_url: str = "wss://stream.binance.com:9443"
    # historicalTrades is not served by the market-data-only host (data-api.binance.vision)
    rest_url: str = "https://api.binance.com"
    # NoDecode: the validator below accepts both "A,B" and a JSON list
    symbols: Annotated[tuple[str, ...], NoDecode] = Field(
        ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"),
        description="spot symbols (comma list); product ids come from exchangeInfo (BTCUSDT -> BTC-USDT)",
    )
    channel: Literal["trade", "aggTrade"] = Field(
        "trade", description="stream per symbol: trade (every trade) or aggTrade (aggregates, own id range)"
    )
    connection_lifetime_s: float = Field(86_400.0, gt=0, description="Binance closes a connection after 24 h")
    rotate_margin_s: float = Field(
        600.0, gt=0, description="open the next connection this long before the lifetime ends"
    )
    handover_s: float = Field(
        5.0, gt=0, description="old and new connection overlap this long (duplicates dropped by trade id)"
    )
    # Binance pings every 20 s and websockets answers each with its payload; our own ping detects a
    # dead socket (one frame per interval, far below the 5 incoming messages per second allowed)
    ping_interval_s: float = Field(30.0, gt=0)
    ping_timeout_s: float = Field(20.0, gt=0)
    open_timeout_s: float = Field(10.0, gt=0)
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    rest_weight_budget_per_minute: float = Field(
        1200.0, gt=0, description="REST request weight this process may use (the IP's limit is 6000/min)"
    )
    rest_page_limit: int = Field(1000, ge=1, le=1000)
    rest_max_wait_s: float = Field(
        300.0, gt=0, description="a Retry-After (429/418) longer than this fails the backfill instead"
    )
    max_frame_bytes: int = Field(64 * 1024, ge=1024, description="larger frames are dead-lettered")

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        return split_list(value)

    @field_validator("symbols")
    @classmethod
    def _symbols_upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one symbol is required")
        if len(value) > MAX_BINANCE_STREAMS:
            # one connection carries at most 1024 streams (web-socket-streams.md, WebSocket Limits)
            raise ValueError(
                f"{len(value)} symbols: one Binance connection carries at most {MAX_BINANCE_STREAMS}"
            )
        return tuple(s.upper() for s in value)

    @model_validator(mode="after")
    def _rotation_fits(self) -> BinanceSettings:
        if not self.handover_s < self.rotate_margin_s < self.connection_lifetime_s:
            raise ValueError(
                "need handover_s < rotate_margin_s < connection_lifetime_s: the next connection must be "
                "open, and handed over, before the venue closes the old one"
            )
        return self

    def rotate_after_s(self) -> float:
        """How long a connection is used before the next one is opened."""
        return self.connection_lifetime_s - self.rotate_margin_s


def _pair_products(value: object) -> object:
    """``bitcoin:usd=BTC-USD,ethereum:usd=ETH-USD`` (or a JSON object) -> ``{"bitcoin:usd": "BTC-USD", ...}``."""
    if isinstance(value, str):
        if value.lstrip().startswith("{"):
            return json.loads(value)
        pairs = {}
        for item in (v.strip() for v in value.split(",") if v.strip()):
            pair, sep, product = item.partition("=")
            if not sep:
                raise ValueError(f"{item!r}: expected COIN:VS=PRODUCT, e.g. bitcoin:usd=BTC-USD")
            pairs[pair.strip()] = product.strip()
        return pairs
    return value


class CoinGeckoSettings(_Section):
    """CoinGecko reference prices (``lakehouse ingest --source coingecko``): ``GET /simple/price``
    polled every ``poll_interval_s``, one reference-price event per (coin id, vs currency) mapped
    to a product in ``products``. Defaults follow docs.coingecko.com: the keyless public API is
    rate limited per IP (the Demo plan allows 100 calls/min with ``x-cg-demo-api-key``; a Pro key
    uses ``x-cg-pro-api-key`` on pro-api.coingecko.com) and the answer is cached for 60 s (30 s on Pro)."""

    base_url: str = "https://api.coingecko.com/api/v3"
    ids: Annotated[tuple[str, ...], NoDecode] = Field(
        ("bitcoin", "ethereum", "solana", "dogecoin"), description="CoinGecko coin API ids (comma list)"
    )
    vs_currencies: Annotated[tuple[str, ...], NoDecode] = Field(
        ("usd",), description="quote currencies (comma list), e.g. usd,usdt,eur"
    )
    # NoDecode: "coin:vs=PRODUCT,..." or a JSON object; the mapping is configuration, never guessed
    products: Annotated[dict[str, str], NoDecode] = Field(
        {
            "bitcoin:usd": "BTC-USD",
            "ethereum:usd": "ETH-USD",
            "solana:usd": "SOL-USD",
            "dogecoin:usd": "DOGE-USD",
        },
        description="coin:vs_currency -> product id (comma list of COIN:VS=PRODUCT)",
    )
    poll_interval_s: float = Field(30.0, gt=0, description="seconds between two /simple/price requests")
    api_key: SecretStr | None = Field(None, description="optional Demo/Pro API key (sent as api_key_header)")
    api_key_header: Literal["x-cg-demo-api-key", "x-cg-pro-api-key"] = "x-cg-demo-api-key"
    rate_limit_per_minute: float = Field(
        10.0, gt=0, description="requests per minute this process may make (the keyless limit is per IP)"
    )
    max_wait_s: float = Field(
        300.0, gt=0, description="a 429 Retry-After longer than this fails the poll (retried next interval)"
    )
    backoff_initial_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(60.0, gt=0)
    max_deviation_bps: float = Field(
        1000.0, gt=0, description="quality: a venue VWAP this far from its reference fails (a wrong mapping)"
    )

    @field_validator("ids", "vs_currencies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_list(value)

    @field_validator("ids", "vs_currencies")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one is required")
        return tuple(v.lower() for v in value)

    @field_validator("products", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        return _pair_products(value)

    @model_validator(mode="after")
    def _every_pair_mapped(self) -> CoinGeckoSettings:
        wanted = {f"{coin}:{vs}" for coin in self.ids for vs in self.vs_currencies}
        missing = sorted(wanted - set(self.products))
        if missing:
            raise ValueError(f"no product mapped for {', '.join(missing)} (set products COIN:VS=PRODUCT)")
        return self

    def pair_products(self) -> dict[tuple[str, str], str]:
        """(coin id, vs currency) -> product id, for the pairs that are polled."""
        return {(c, v): self.products[f"{c}:{v}"] for c in self.ids for v in self.vs_currencies}


class SyntheticSettings(_Section):
    rate_per_s: float = Field(50.0, gt=0, description="trades per second across all products")
    seed: int = 42


class S3Settings(_Section):
    endpoint: str = "http://127.0.0.1:8333"
    region: str = "us-east-1"
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    warehouse_bucket: str = "warehouse"

    def credentials(self) -> tuple[str, str]:
        """The key pair, or an error that names the variables to set."""
        if self.access_key is None or self.secret_key is None:
            raise MissingSetting(
                f"{ENV_PREFIX}S3__ACCESS_KEY and {ENV_PREFIX}S3__SECRET_KEY",
                "storage requires credentials; `lakehouse up` generates them for the embedded stack",
            )
        return self.access_key.get_secret_value(), self.secret_key.get_secret_value()


class CatalogSettings(_Section):
    name: str = "lakehouse"
    uri: str = "http://127.0.0.1:8181"
    warehouse: str = "s3://warehouse"
    # OAuth2 client credentials "id:secret". Empty: use the S3 key pair (SeaweedFS's catalog does).
    credential: SecretStr | None = None
    # "none": send no OAuth2 credentials (Nessie in the compose stack runs without an auth server)
    auth: Literal["oauth2", "none"] = "oauth2"


class EngineSettings(_Section):
    processing: Literal["duckdb", "spark"] = "duckdb"
    query: Literal["duckdb", "trino"] = "duckdb"


class BronzeSettings(_Section):
    consumer_group: str = "lakehouse-bronze"
    # static group membership: a restarted writer takes its partitions back at once instead of
    # waiting for the crashed member to time out; give each concurrent writer its own id
    instance_id: str = "bronze-1"
    flush_rows: int = Field(50_000, ge=1)
    flush_seconds: float = Field(5.0, gt=0)
    retry_max_s: float = Field(30.0, gt=0, description="longest wait between retries of an outage")


class MaintenanceSettings(_Section):
    """Iceberg retention and maintenance: hourly (the crypto_maintenance DAG) and continuous (the
    bronze writer); see docs/maintenance.md."""

    compact_min_files: int = Field(10, ge=2, description="compact a closed hour once it has this many files")
    snapshot_retention_hours: float = Field(
        72.0,
        gt=0,
        description="hourly tags are kept this long: time travel reaches every hour boundary this far back",
    )
    retain_last_snapshots: int = Field(
        10, ge=2, description="untagged snapshots kept (the newest N); every other untagged one is expired"
    )
    expire_every_commits: int = Field(
        12,
        ge=1,
        description="the bronze writer expires snapshots after every N of its commits (12 = a minute)",
    )
    orphan_min_age_hours: float = Field(
        1.0, ge=0, description="unreferenced files younger than this are kept (writes and reads in flight)"
    )
    storage_log_retention_hours: float = Field(
        2.0,
        gt=0,
        description="embedded stack: SeaweedFS's filer metadata log is kept this long; older minute files are "
        "deleted hourly and vacuumed (infrastructure/seaweed_log.py)",
    )
    service_log_max_mb: int = Field(
        64,
        ge=1,
        description="embedded stack: a service log over this is copied to <name>.log.1 and truncated",
    )
    task_log_retention_days: float = Field(
        7.0, gt=0, description="Airflow task logs older than this are deleted"
    )
    audit_ref_retention_hours: float = Field(
        48.0, gt=0, description="a failed hour's audit branches and tags are kept this long for inspection"
    )


class OrchestrationSettings(_Section):
    """Airflow DAG scheduling (both stacks)."""

    start_date: datetime | None = Field(
        None,
        description="first hour of the hourly schedule, catch-up starts here; "
        "unset: the hour the stack first ran (persisted in <data_dir>/airflow/start_date)",
    )
    bronze_wait_timeout_s: float = Field(600.0, gt=0, description="backfill DAG: how long to wait for bronze")
    write_audit_publish: bool = Field(
        True,
        description="hourly DAG: stage silver on an Iceberg branch and gold in gold_audit, publish only "
        "after the audit passes (docs/write-audit-publish.md); false: write main directly (the Spark engine)",
    )

    @field_validator("start_date")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SilverSettings(_Section):
    """Validation bounds for silver: a trade whose exchange time is this far from its ingest time is
    rejected as a clock or parsing error (backfills and replays of old data need a larger age)."""

    max_event_future_s: int = Field(86_400, ge=0, description="event time after ingest time")
    max_event_age_s: int = Field(30 * 86_400, ge=0, description="event time before ingest time")


class CompletenessSettings(_Section):
    """Trade-id completeness of silver (``silver.trade_gaps``) and the automatic backfill of its holes."""

    lookback_s: int = Field(
        86_400, gt=0, description="how far before a window to look for the trade that precedes it"
    )
    recheck_hours: int = Field(
        1, ge=0, description="each hourly check also looks at this many earlier hours (late trades)"
    )
    backfill_exchanges: Annotated[tuple[str, ...], NoDecode] = Field(
        ("coinbase", "binance"),
        description="exchanges whose holes are filled from their REST API (comma list)",
    )
    max_backfills_per_run: int = Field(20, ge=0, description="backfill DAG runs one check may trigger")
    max_backfill_ids: int = Field(
        1_000_000, ge=1, description="larger holes are recorded and alerted on, not backfilled automatically"
    )
    max_dead_letters: int = Field(100_000, ge=0, description="DLQ messages one check reads at most")
    retention_days: int = Field(30, ge=1, description="closed gap rows older than this are dropped")

    @field_validator("backfill_exchanges", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_list(value)


class TrinoSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8082  # the compose stack publishes Trino here; inside compose it is trino:8080
    user: str = "lakehouse"
    catalog: str = "iceberg"


class MetricsSettings(_Section):
    host: str = "127.0.0.1"
    producer_port: int = 9201
    # the Binance producer is a process of its own (one per venue), so it serves on a port of its own
    binance_producer_port: int = 9203
    coingecko_producer_port: int = 9204  # the CoinGecko poller, a process of its own too
    bronze_port: int = 9202
    bronze_reference_port: int = 9205  # the bronze writer of reference prices (its own process)
    pushgateway_url: str = "http://127.0.0.1:9091"
    # the Pushgateway requires basic auth; `lakehouse up` generates the embedded stack's password
    pushgateway_username: str = "lakehouse"
    pushgateway_password: SecretStr | None = None
    # `lakehouse dashboard`: the embedded stack's local dashboard page and how often it refreshes
    dashboard_port: int = 8501
    dashboard_refresh_s: float = Field(10.0, gt=0)

    def pushgateway_auth(self) -> tuple[str, str]:
        """(user, password) for the Pushgateway, or an error naming the variable to set."""
        if self.pushgateway_password is None:
            raise MissingSetting(
                f"{ENV_PREFIX}METRICS__PUSHGATEWAY_PASSWORD",
                "the Pushgateway requires credentials; `lakehouse up` generates them for the embedded stack",
            )
        return self.pushgateway_username, self.pushgateway_password.get_secret_value()


class StackSettings(_Section):
    """The embedded stack's own ports. Kafka, S3 and the catalog listen where the client settings
    above point (``kafka.bootstrap_servers``, ``s3.endpoint``, ``catalog.uri``): one source of truth."""

    host: str = "127.0.0.1"
    seaweed_master_port: int = 9333
    seaweed_volume_port: int = 8380
    seaweed_filer_port: int = 8888
    seaweed_admin_port: int = 23646
    seaweed_lance_port: int = 9101
    prometheus_port: int = 9090
    airflow_port: int = 8081
    docs_port: int = 8502  # `lakehouse docs` serves dbt docs and GE Data Docs here
    start_timeout_s: float = Field(60.0, gt=0)


class Settings(BaseSettings):
    """Everything configurable. Build it with :func:`load_settings` (or ``Settings()`` in tests)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    # NoDecode: the validator below accepts both "A,B" and a JSON list
    products: Annotated[tuple[str, ...], NoDecode] = ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD")
    data_dir: Path = DEFAULT_DATA_DIR
    debug: bool = Field(False, description="log full tracebacks of retried errors")

    kafka: KafkaSettings = KafkaSettings()
    coinbase: CoinbaseSettings = CoinbaseSettings()
    binance: BinanceSettings = BinanceSettings()
    coingecko: CoinGeckoSettings = CoinGeckoSettings()
    synthetic: SyntheticSettings = SyntheticSettings()
    s3: S3Settings = S3Settings()
    catalog: CatalogSettings = CatalogSettings()
    engine: EngineSettings = EngineSettings()
    bronze: BronzeSettings = BronzeSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    orchestration: OrchestrationSettings = OrchestrationSettings()
    silver: SilverSettings = SilverSettings()
    completeness: CompletenessSettings = CompletenessSettings()
    trino: TrinoSettings = TrinoSettings()
    metrics: MetricsSettings = MetricsSettings()
    stack: StackSettings = StackSettings()

    @field_validator("products", mode="before")
    @classmethod
    def _split_products(cls, value: object) -> object:
        return split_list(value)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # anchored at the working folder of the process that loads the settings: the services run
        # in folders of their own, where a relative path (the default ``.lakehouse``) means elsewhere
        return value.expanduser().absolute()

    @field_validator("products")
    @classmethod
    def _products_upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one product is required")
        return tuple(p.upper() for p in value)

    def catalog_credential(self) -> str:
        """OAuth2 client credentials for the REST catalog ("id:secret")."""
        if self.catalog.credential is not None:
            return self.catalog.credential.get_secret_value()
        key, secret = self.s3.credentials()
        return f"{key}:{secret}"


class MissingSetting(RuntimeError):
    """A required setting is absent; the message names the variable(s) to set."""

    def __init__(self, variables: str, why: str) -> None:
        super().__init__(f"missing setting {variables}: {why}")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a KEY=VALUE file (comments and blank lines ignored)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def _data_dir_hint() -> Path:
    # The data dir decides where generated credentials live, so it is resolved before the rest.
    return Path(os.environ.get(f"{ENV_PREFIX}DATA_DIR", str(DEFAULT_DATA_DIR)))


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, ``.env`` and the generated credentials file.

    Raises ``ValueError`` whose message names each offending variable.
    """
    # later files win; the process environment beats both
    env_files = (_data_dir_hint() / CREDENTIALS_FILE, Path(".env"))
    try:
        return Settings(_env_file=env_files, **overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'__'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"invalid settings: {problems}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once (entry points only; library code takes arguments)."""
    return load_settings()


def to_environment(settings: BaseModel, prefix: str = ENV_PREFIX) -> dict[str, str]:
    """The variables that rebuild ``settings`` in a child process (e.g. ``spark-submit``).

    Secrets are included in clear: pass the result only to a child's environment, never log it.
    """
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        variable = f"{prefix}{name.upper()}"
        if isinstance(value, BaseModel):
            env.update(to_environment(value, f"{variable}__"))
        elif isinstance(value, SecretStr):
            env[variable] = value.get_secret_value()
        elif isinstance(value, tuple | list):
            env[variable] = json.dumps(list(value))
        elif isinstance(value, dict):
            env[variable] = json.dumps(value)
        elif value is not None:
            env[variable] = str(value)
    return env


def env_variables(
    model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX
) -> list[tuple[str, object, str]]:
    """Every leaf variable as (NAME, default, description): the list ``.env.example`` must document."""
    found: list[tuple[str, object, str]] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += env_variables(annotation, f"{prefix}{name.upper()}__")
        else:
            found.append((f"{prefix}{name.upper()}", info.default, info.description or ""))
    return found


def setting_sources(settings: Settings) -> list[tuple[str, str, str]]:
    """Every variable as (NAME, value, where it came from): ``environment``, ``.env``, the credentials
    file, or ``default``, by the precedence :func:`load_settings` applies. Secrets are masked."""
    env_file = read_env_file(Path(".env"))
    credentials_path = _data_dir_hint() / CREDENTIALS_FILE
    credentials = read_env_file(credentials_path)
    secret = {name for name, value in _leaves(settings) if isinstance(value, SecretStr)}
    effective = to_environment(settings)
    rows = []
    for name, _default, _description in env_variables():
        if name in os.environ:
            source = "environment"
        elif name in env_file:
            source = ".env"
        elif name in credentials:
            source = str(credentials_path)
        else:
            source = "default"
        value = effective.get(name, "")
        rows.append((name, "**********" if name in secret and value else value, source))
    return rows


def _leaves(model: BaseModel, prefix: str = ENV_PREFIX) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        variable = f"{prefix}{name.upper()}"
        found += _leaves(value, f"{variable}__") if isinstance(value, BaseModel) else [(variable, value)]
    return found
