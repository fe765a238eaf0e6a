"""Secrets of the secured local broker: a CA, a broker certificate and SCRAM users, made once."""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from config import stack_dir

# The broker's own user (inter-broker SASL) and the user workers and commands connect as.
ADMIN_USER = "admin"
CLIENT_USER = "fulfillment"
MECHANISM = "SCRAM-SHA-512"
VALID_DAYS = 825  # the longest validity clients such as macOS accept for a server certificate


@dataclass(frozen=True)
class Secrets:
    """Where the secured stack's files are and the passwords of its two users."""

    folder: Path
    admin_password: str
    client_password: str

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def keystore(self) -> Path:
        """The broker's private key (PKCS#8, unencrypted) and certificate chain, as Kafka's PEM keystore."""
        return self.folder / "broker-keystore.pem"

    @property
    def env_file(self) -> Path:
        return self.folder / "client.env"

    def client_env(self, bootstrap: str) -> dict[str, str]:
        """The documented settings a worker or command needs to reach the secured stack."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": MECHANISM,
            "KAFKA_SASL_USERNAME": CLIENT_USER,
            "KAFKA_SASL_PASSWORD": self.client_password,
            "KAFKA_SSL_CAFILE": str(self.ca_file),
        }

    def admin_options(self) -> dict[str, str]:
        """Settings.kafka_security for the stack's own readiness probe (as the admin user)."""
        return {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": MECHANISM,
            "sasl_username": ADMIN_USER,
            "sasl_password": self.admin_password,
            "ssl_cafile": str(self.ca_file),
        }


def folder() -> Path:
    return stack_dir() / "kafka-secrets"


def load() -> Secrets | None:
    """The secrets made by an earlier `stack up --secure`, if any."""
    try:
        data = json.loads((folder() / "users.json").read_text())
    except (OSError, ValueError):
        return None
    return Secrets(folder(), data[ADMIN_USER], data[CLIENT_USER])


def ensure() -> Secrets:
    """Load the secrets, or make them: a CA, a broker certificate for 127.0.0.1 and localhost,
    and random passwords (URL-safe, so they need no quoting in JAAS or env files)."""
    found = load()
    if found is not None:
        return found
    target = folder()
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o700)
    made = Secrets(target, secrets.token_urlsafe(24), secrets.token_urlsafe(24))
    ca_pem, keystore_pem = _certificates()
    made.ca_file.write_bytes(ca_pem)
    _write_private(made.keystore, keystore_pem)
    _write_private(
        target / "users.json",
        json.dumps({ADMIN_USER: made.admin_password, CLIENT_USER: made.client_password}).encode(),
    )
    return made


def write_env_file(made: Secrets, bootstrap: str) -> Path:
    """`client.env`: the settings for clients, to `source` before `fulfillment worker`."""
    lines = [f"export {name}={value}" for name, value in made.client_env(bootstrap).items()]
    _write_private(made.env_file, ("\n".join(lines) + "\n").encode())
    return made.env_file


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _certificates() -> tuple[bytes, bytes]:
    """(CA certificate PEM, broker key + certificate + CA PEM) for loopback."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fulfillment local stack CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    broker = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # Brokers are clients of each other too (inter-broker SASL_SSL).
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    # Kafka reads an unencrypted PKCS#8 key from a PEM keystore when ssl.key.password is unset.
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca_pem, key_pem + broker.public_bytes(pem) + ca_pem
