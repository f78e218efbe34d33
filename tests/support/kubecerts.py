"""Certificates and keys for the test control plane (like envtest's tinyca).

One throwaway CA signs the apiserver's serving certificate and the admin client
certificate (user ``admin`` in ``system:masters``); a separate RSA key pair signs
ServiceAccount tokens. Everything lives only in the control plane's temp dir.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=7)
SERVING_DNS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
SERVING_IPS = ("127.0.0.1", "::1", "10.0.0.1")  # 10.0.0.1: the `kubernetes` Service IP


@dataclass(frozen=True)
class CertFiles:
    """Paths of the PEM files the apiserver and the kubeconfig use."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_private_key: Path
    sa_public_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _new_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("finops-test-ca")
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(ca_key, ca_cert: x509.Certificate, subject: x509.Name, *, server: bool):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(subject, ca_cert.subject, key.public_key()).add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    )
    if server:
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in SERVING_DNS]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in SERVING_IPS]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        usage = ExtendedKeyUsageOID.SERVER_AUTH
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def generate(cert_dir: Path, admin_user: str = "admin", admin_group: str = "system:masters") -> CertFiles:
    """Write a fresh CA, serving cert, admin client cert and SA key pair into ``cert_dir``."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    ca_key, ca_cert = _new_ca()
    srv_key, srv_cert = _leaf(ca_key, ca_cert, _name("kube-apiserver"), server=True)
    adm_key, adm_cert = _leaf(ca_key, ca_cert, _name(admin_user, admin_group), server=False)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_pub = sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    return CertFiles(
        ca_cert=_write(cert_dir / "ca.crt", ca_cert.public_bytes(pem)),
        serving_cert=_write(cert_dir / "apiserver.crt", srv_cert.public_bytes(pem)),
        serving_key=_write(cert_dir / "apiserver.key", _key_pem(srv_key)),
        admin_cert=_write(cert_dir / "admin.crt", adm_cert.public_bytes(pem)),
        admin_key=_write(cert_dir / "admin.key", _key_pem(adm_key)),
        sa_private_key=_write(cert_dir / "sa-signer.key", _key_pem(sa_key)),
        sa_public_key=_write(cert_dir / "sa-signer.pub", sa_pub),
    )
