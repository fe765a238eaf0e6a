"""Settings and Kafka security come from the environment, with one-line errors."""

from __future__ import annotations

import ast
import re

import pytest
from faststream.security import BaseSecurity, SASLScram512

from config import ConfigError, Environment, Settings, environment, project_root
from config.kafka_security import broker_security, client_options


def test_defaults_follow_the_contract() -> None:
    settings = Settings()
    assert (settings.kafka_bootstrap, settings.mongodb_uri, settings.database) == (
        "localhost:9092",
        "mongodb://localhost:27017",
        "fulfillment",
    )


def test_local_stack_ports_move_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FULFILLMENT_KAFKA_PORT", "39092")
    monkeypatch.setenv("FULFILLMENT_MONGODB_PORT", "37017")
    settings = Settings.from_env()
    assert settings.kafka_bootstrap == "localhost:39092"
    assert settings.mongodb_uri == "mongodb://localhost:37017"


def test_sasl_scram_over_tls_configures_every_kafka_client() -> None:
    options = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "u",
        "sasl_password": "p",
    }
    assert isinstance(broker_security(options), SASLScram512)
    kwargs = client_options(options)
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "u" and kwargs["ssl_context"] is not None


def test_tls_only_and_plaintext() -> None:
    assert isinstance(broker_security({"security_protocol": "SSL"}), BaseSecurity)
    assert broker_security({}) is None and client_options({}) == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"security_protocol": "SASL_SSL"},
            "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required",
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "GSSAPI",
                "sasl_username": "u",
                "sasl_password": "p",
            },
            "KAFKA_SASL_MECHANISM",
        ),
        ({"security_protocol": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        (
            {"security_protocol": "SSL", "ssl_cafile": "/no/such/ca.pem"},
            "KAFKA_SSL_CAFILE '/no/such/ca.pem' cannot be used: No such file or directory",
        ),
        (
            {"security_protocol": "SSL", "ssl_cafile": __file__},
            "KAFKA_SSL_CAFILE '.*' cannot be used",
        ),
    ],
)
def test_bad_security_settings_are_one_line_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        broker_security(options)


def test_non_numeric_partitions_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULFILLMENT_PARTITIONS", "six")
    with pytest.raises(ConfigError, match="FULFILLMENT_PARTITIONS must be an integer"):
        Settings.from_env()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "FULFILLMENT_BATCH_SIZE",
            "0",
            "FULFILLMENT_BATCH_SIZE must be between 1 and 10000, got 0",
        ),
        (
            "FULFILLMENT_BATCH_SIZE",
            "-5",
            "FULFILLMENT_BATCH_SIZE must be between 1 and 10000, got -5",
        ),
        ("FULFILLMENT_BATCH_SIZE", "10001", "FULFILLMENT_BATCH_SIZE must be between 1 and 10000"),
        ("FULFILLMENT_PARTITIONS", "0", "FULFILLMENT_PARTITIONS must be at least 1, got 0"),
        (
            "FULFILLMENT_REPLICATION_FACTOR",
            "-1",
            "FULFILLMENT_REPLICATION_FACTOR must be at least 1",
        ),
        (
            "FULFILLMENT_KAFKA_PORT",
            "0",
            "FULFILLMENT_KAFKA_PORT must be between 1 and 65535, got 0",
        ),
        ("FULFILLMENT_KAFKA_PORT", "nine", "FULFILLMENT_KAFKA_PORT must be an integer"),
        (
            "FULFILLMENT_MONGODB_PORT",
            "70000",
            "FULFILLMENT_MONGODB_PORT must be between 1 and 65535",
        ),
    ],
)
def test_out_of_range_numeric_settings_are_one_line_config_errors(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=message) as raised:
        Settings.from_env()
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FULFILLMENT_BATCH_SIZE", "1"),
        ("FULFILLMENT_BATCH_SIZE", "10000"),
        ("FULFILLMENT_PARTITIONS", "1"),
        ("FULFILLMENT_KAFKA_PORT", "65535"),
    ],
)
def test_numeric_settings_at_the_edges_of_their_range_are_accepted(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    Settings.from_env()


def test_settings_built_in_code_are_checked_like_the_environment() -> None:
    with pytest.raises(ConfigError, match="FULFILLMENT_BATCH_SIZE must be between 1 and 10000"):
        Settings(batch_size=0)


def test_a_request_timeout_reaches_every_kafka_client_only_when_set() -> None:
    assert "request_timeout_ms" not in Settings().kafka_options()
    assert Settings(kafka_request_timeout_ms=3000).kafka_options()["request_timeout_ms"] == 3000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0x", "FULFILLMENT_METRICS_PORT must be a port number or off"),
        ("70000", "FULFILLMENT_METRICS_PORT must be between 1 and 65535"),
    ],
)
def test_a_bad_metrics_port_is_a_one_line_config_error(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    from consumers.worker import metrics_port

    monkeypatch.setenv("FULFILLMENT_METRICS_PORT", value)
    with pytest.raises(ConfigError, match=message):
        metrics_port()


def test_the_environment_is_read_anew_when_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FULFILLMENT_KAFKA_CONTROLLER_PORT", raising=False)
    monkeypatch.setenv("FULFILLMENT_KAFKA_PORT", "39092")
    assert environment().fulfillment_kafka_port == 39092
    monkeypatch.setenv("FULFILLMENT_KAFKA_PORT", "39093")
    assert environment().fulfillment_kafka_port == 39093
    assert environment().kafka_controller_port == 39094
    monkeypatch.delenv("FULFILLMENT_KAFKA_PORT")
    assert environment().fulfillment_kafka_port == 9092


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULFILLMENT_BATCH_SIZE", "")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "")
    monkeypatch.delenv("FULFILLMENT_KAFKA_PORT", raising=False)
    settings = Settings.from_env()
    assert (settings.batch_size, settings.kafka_bootstrap) == (500, "localhost:9092")


def test_secrets_stay_out_of_the_environment_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULFILLMENT_SECRET_KEY", "k3y")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pa55")
    monkeypatch.setenv("FULFILLMENT_CONSOLE_PASSWORD", "c0nsole")
    shown = repr(environment())
    assert not any(secret in shown for secret in ("k3y", "pa55", "c0nsole"))
    assert Settings.from_env().kafka_security["sasl_password"] == "pa55"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FULFILLMENT_LOG_LEVEL", "loud", "FULFILLMENT_LOG_LEVEL must be CRITICAL, ERROR, WARNING"),
        ("FULFILLMENT_TRACING", "jaeger", "FULFILLMENT_TRACING must be otlp, console or off"),
        ("FULFILLMENT_DEBUG", "maybe", "FULFILLMENT_DEBUG must be true or false, not 'maybe'"),
        ("FULFILLMENT_WORKER_SLOT", "x", "FULFILLMENT_WORKER_SLOT must be an integer, got 'x'"),
        (
            "FULFILLMENT_KAFKA_CONTROLLER_PORT",
            "0",
            "FULFILLMENT_KAFKA_CONTROLLER_PORT must be between 1 and 65535, got 0",
        ),
        # A malformed address is a configuration error, not an outage waited out forever.
        ("MONGODB_URI", "http://x", "MONGODB_URI must start with mongodb:// or mongodb"),
        ("MONGODB_URI", "mongodb://h:notaport", "MONGODB_URI has a port that is not a number"),
        ("MONGODB_URI", "mongodb:///db", "MONGODB_URI names no host"),
        ("MONGODB_URI", "mongodb://h/?badoption=1", "MONGODB_URI is not usable: Unknown option"),
        ("MONGODB_URI", "mongodb://h/?tls=maybe", "MONGODB_URI is not usable: The value of tls"),
        ("MONGODB_DATABASE", "a/b", "MONGODB_DATABASE must be 1 to 63 characters"),
        ("MONGODB_DATABASE", "x" * 64, "MONGODB_DATABASE must be 1 to 63 characters"),
        ("KAFKA_BOOTSTRAP_SERVERS", "h:notaport", "KAFKA_BOOTSTRAP_SERVERS must be host:port"),
        ("KAFKA_BOOTSTRAP_SERVERS", "h:\u00b2", "KAFKA_BOOTSTRAP_SERVERS must be host:port"),
        ("KAFKA_BOOTSTRAP_SERVERS", "a:9092,:9093", "KAFKA_BOOTSTRAP_SERVERS must be host:port"),
        ("KAFKA_BOOTSTRAP_SERVERS", "http://h:9092", "KAFKA_BOOTSTRAP_SERVERS must be host:port"),
        # A certificate file pymongo cannot read is named, not a traceback.
        (
            "MONGODB_URI",
            "mongodb://h/?tls=true&tlsCAFile=/no/such/ca.pem",
            "MONGODB_URI is not usable: .*No such file or directory: '/no/such/ca.pem'",
        ),
        (
            "MONGODB_URI",
            "mongodb://h/?tls=true&tlsCAFile=/",
            "MONGODB_URI is not usable: .*directory",
        ),
        ("FULFILLMENT_TOPIC_PREFIX", "a b/", "FULFILLMENT_TOPIC_PREFIX must be at most 200 of"),
        ("FULFILLMENT_TOPIC_PREFIX", "p" * 201, "FULFILLMENT_TOPIC_PREFIX must be at most 200"),
        ("MONGODB_DATABASE", "caf\udce9", "MONGODB_DATABASE is not valid UTF-8"),
        ("KAFKA_BOOTSTRAP_SERVERS", "h\udcff:9092", "KAFKA_BOOTSTRAP_SERVERS is not valid UTF-8"),
    ],
)
def test_every_typed_variable_fails_in_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=message) as raised:
        environment()
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb://user:s3cret@h:notaport",
        "mongodb://user:s3cret@h/?badoption=1",
        "mongodb://user:s3cret@h/?authMechanism=s3cret",
    ],
)
def test_a_malformed_store_address_is_never_echoed_since_it_may_hold_a_password(
    monkeypatch: pytest.MonkeyPatch, uri: str
) -> None:
    monkeypatch.setenv("MONGODB_URI", uri)
    with pytest.raises(ConfigError) as raised:
        environment()
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MONGODB_URI", "mongodb://u:p%40ss@db1:27017,db2:27018/?replicaSet=rs0"),
        ("MONGODB_URI", "mongodb://[::1]:27017"),
        ("MONGODB_URI", "mongodb+srv://cluster0.example.net/orders"),
        ("MONGODB_DATABASE", "fulfillment_bench-1"),
        ("KAFKA_BOOTSTRAP_SERVERS", "k1:9092, k2:9093,k3"),
    ],
)
def test_well_formed_addresses_of_kafka_and_the_store_are_taken_as_given(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(environment(), variable.lower()) == value


def test_log_level_and_tracing_mode_are_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULFILLMENT_LOG_LEVEL", "debug")
    monkeypatch.setenv("FULFILLMENT_TRACING", "None")
    assert (environment().fulfillment_log_level, environment().fulfillment_tracing) == (
        "DEBUG",
        "off",
    )


def test_the_readme_configuration_table_lists_every_variable_once() -> None:
    readme = (project_root() / "README.md").read_text()
    section = readme.split("## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = [re.findall(r"`([A-Z0-9_]+)`", row.split("|")[1]) for row in rows]
    assert all(len(names) == 1 for names in documented), "one variable a row"
    variables = [names[0] for names in documented]
    assert len(variables) == len(set(variables)), "each variable once"
    assert set(variables) == {name.upper() for name in Environment.model_fields}


def _reads_the_environment(node: ast.AST) -> bool:
    """`os.getenv(...)`, `os.environ.get(...)` or `os.environ[...]` (passing it on is no read)."""

    def is_os(value: ast.expr, attr: str) -> bool:
        return (
            isinstance(value, ast.Attribute)
            and value.attr == attr
            and isinstance(value.value, ast.Name)
            and value.value.id == "os"
        )

    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return is_os(node.func, "getenv") or (
            node.func.attr == "get" and is_os(node.func.value, "environ")
        )
    return (
        isinstance(node, ast.Subscript)
        and isinstance(node.ctx, ast.Load)
        and is_os(node.value, "environ")
    )


def test_only_config_environment_reads_the_environment() -> None:
    root = project_root()
    packages = [p.parent for p in root.glob("*/__init__.py") if p.parent.name != "tests"]
    readers = [
        f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        for package in packages
        for path in package.rglob("*.py")
        if path != root / "config" / "environment.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if _reads_the_environment(node)
    ]
    assert len(packages) > 5
    assert readers == [], "read variables through config.environment()"


def test_the_longest_topic_prefix_leaves_every_contract_topic_within_kafkas_249_characters() -> (
    None
):
    from config.environment import TOPIC_PREFIX_MAX
    from schemas.names import INPUT_TOPICS, OUTPUT_TOPICS

    longest = max(len(name) for t in INPUT_TOPICS for name in (t.value, t.dlq))
    assert TOPIC_PREFIX_MAX + max(longest, *(len(t.value) for t in OUTPUT_TOPICS)) <= 249
