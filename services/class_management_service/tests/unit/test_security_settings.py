"""Authentication settings, the ``token`` command and the masking of URL passwords."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import subprocess
import sys

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from services.class_management_service.app import create_app
from services.class_management_service.config import (
    ENV_PREFIX,
    AuthMode,
    Settings,
    SettingsError,
)
from services.class_management_service.exceptions import InvalidTokenError
from services.class_management_service.implementations.jwt_token_verifier_impl import (
    JwtTokenVerifierImpl,
)
from services.class_management_service.logging_setup import JsonFormatter, TextFormatter
from services.class_management_service.secrets_masking import mask_url_passwords
from services.class_management_service.tests.support.service_process import REPO_ROOT
from services.class_management_service.tests.support.tokens import TEST_SECRET


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


RSA_PEM = _pem(rsa.generate_private_key(65537, 2048))
EC_PEM = _pem(ec.generate_private_key(ec.SECP256R1()))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, f"needs {ENV_PREFIX}JWT_SECRET_KEY"),
        ({"JWT_SECRET_KEY": "  "}, f"needs {ENV_PREFIX}JWT_SECRET_KEY"),
        ({"JWT_ALGORITHMS": "RS256"}, f"needs {ENV_PREFIX}JWT_PUBLIC_KEY"),
        ({"JWT_ALGORITHMS": "HS256,ES256", "JWT_SECRET_KEY": TEST_SECRET}, "JWT_PUBLIC_KEY"),
    ],
)
def test_the_api_in_jwt_mode_needs_the_key_of_every_allowed_algorithm(
    settings: dict[str, str], message: str
) -> None:
    configured = Settings(AUTH_MODE=AuthMode.JWT, **settings)  # type: ignore[arg-type]
    with pytest.raises(SettingsError) as raised:
        configured.require_token_keys()
    assert message in str(raised.value)
    with pytest.raises(SettingsError):
        create_app(configured)
    create_app(configured, api=False)  # the relay verifies no token


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"JWT_SECRET_KEY": "short"}, "at least 32 bytes for HS256"),
        ({"JWT_ALGORITHMS": "RS256", "JWT_PUBLIC_KEY": "not a pem"}, "is not a PEM public key"),
        ({"JWT_ALGORITHMS": "ES256", "JWT_PUBLIC_KEY": RSA_PEM}, "is not an EC key"),
        ({"JWT_ALGORITHMS": "RS256", "JWT_PUBLIC_KEY": EC_PEM}, "is not an RSA key"),
        ({"JWT_ALGORITHMS": "none", "JWT_SECRET_KEY": TEST_SECRET}, "not none"),
        ({"JWT_ALGORITHMS": "HS256,none", "JWT_SECRET_KEY": TEST_SECRET}, "not none"),
        ({"JWT_ALGORITHMS": "", "JWT_SECRET_KEY": TEST_SECRET}, "must list some of"),
    ],
)
def test_settings_refuse_algorithms_and_keys_that_cannot_verify(
    settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(AUTH_MODE=AuthMode.TRUSTED_HEADER, **settings)  # type: ignore[arg-type]
    assert message in str(raised.value)
    assert TEST_SECRET not in str(raised.value)


def test_the_defaults_are_jwt_with_hs256_for_the_gateways_audience() -> None:
    settings = Settings(AUTH_MODE=AuthMode.JWT, JWT_SECRET_KEY=TEST_SECRET)  # type: ignore[arg-type]
    assert Settings.model_fields["AUTH_MODE"].default is AuthMode.JWT
    assert settings.JWT_ALGORITHMS == ("HS256",)
    assert settings.JWT_AUDIENCE == "huledu-services"
    assert settings.JWT_ISSUER is None
    assert settings.JWT_LEEWAY_SECONDS == 30
    assert TEST_SECRET not in repr(settings)
    both = Settings(
        AUTH_MODE=AuthMode.JWT,
        JWT_ALGORITHMS="HS256, RS256",  # type: ignore[arg-type]
        JWT_SECRET_KEY=TEST_SECRET,  # type: ignore[arg-type]
        JWT_PUBLIC_KEY=RSA_PEM,
    )
    assert both.JWT_ALGORITHMS == ("HS256", "RS256")


def test_trusted_header_mode_needs_no_key() -> None:
    settings = Settings(AUTH_MODE=AuthMode.TRUSTED_HEADER)
    settings.require_token_keys()
    assert settings.JWT_SECRET_KEY is None


def test_a_public_key_is_never_an_hmac_secret() -> None:
    """With HS256 and RS256 both allowed, an HS256 token signed with the public PEM fails:
    the key comes from the algorithm's family, never from what the token says."""
    settings = Settings(
        AUTH_MODE=AuthMode.JWT,
        JWT_ALGORITHMS="HS256,RS256",  # type: ignore[arg-type]
        JWT_SECRET_KEY=TEST_SECRET,  # type: ignore[arg-type]
        JWT_PUBLIC_KEY=RSA_PEM,
    )
    verifier = JwtTokenVerifierImpl(settings)
    claims = {"sub": "u", "aud": "huledu-services", "exp": 4_000_000_000}
    assert verifier.verify(jwt.encode(claims, TEST_SECRET, algorithm="HS256")) == "u"

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256"}') + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(RSA_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidTokenError):
        verifier.verify(f"{signing_input}.{b64(signature)}")


def _command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return subprocess.run(
        [sys.executable, "-m", "services.class_management_service", *args],
        cwd=REPO_ROOT,
        env={**clean, **{ENV_PREFIX + name: value for name, value in env.items()}},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_in_jwt_mode_without_a_key_refuses_to_start_with_one_line() -> None:
    result = _command("serve", DATABASE_URL="postgresql://u:db-password-123@127.0.0.1:1/x")
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{ENV_PREFIX}JWT_SECRET_KEY" in lines[0]
    assert "db-password-123" not in result.stderr + result.stdout


def test_token_prints_a_token_the_service_accepts() -> None:
    env = {"JWT_SECRET_KEY": TEST_SECRET, "JWT_ISSUER": "gw"}
    result = _command("token", "--user", "teacher-1", "--ttl", "120", **env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    settings = Settings(AUTH_MODE=AuthMode.JWT, **env)  # type: ignore[arg-type]
    assert JwtTokenVerifierImpl(settings).verify(token) == "teacher-1"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    assert claims["aud"] == "huledu-services" and claims["iss"] == "gw"


def test_an_invalid_setting_is_one_line_without_the_other_values() -> None:
    result = _command(
        "serve",
        AUTH_MODE="trusted-header",
        JWT_SECRET_KEY="too-short-secret",
        DATABASE_URL="postgresql://u:db-password-123@127.0.0.1:1/x",
    )
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"{ENV_PREFIX}JWT_SECRET_KEY must be at least 32 bytes" in result.stderr
    assert "too-short-secret" not in result.stderr and "db-password-123" not in result.stderr


def test_token_without_a_secret_says_which_setting_is_missing() -> None:
    result = _command("token", "--user", "teacher-1", AUTH_MODE="trusted-header")
    assert result.returncode == 2
    assert f"no {ENV_PREFIX}JWT_SECRET_KEY" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql+asyncpg://cms:s3cr3t@db:5432/cms", "postgresql+asyncpg://cms:***@db:5432/cms"),
        (
            "connect to 'postgresql://u:p@ss@h/d' failed",
            "connect to 'postgresql://u:***@h/d' failed",
        ),
        ("redis://:pw@redis:6379/0 down", "redis://:***@redis:6379/0 down"),
        ("postgresql://u@h/d and http://h/p", "postgresql://u@h/d and http://h/p"),
        ("no url here", "no url here"),
    ],
)
def test_url_passwords_are_masked(text: str, masked: str) -> None:
    assert mask_url_passwords(text) == masked


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_log_lines_mask_url_passwords_in_messages_and_tracebacks(
    formatter: logging.Formatter,
) -> None:
    url = "postgresql+asyncpg://cms:s3cr3t-pw@db:5432/cms"
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "engine %s", (url,), sys.exc_info()
        )
    line = formatter.format(record)
    assert "s3cr3t-pw" not in line
    assert "cms:***@db" in line


def test_every_test_docs_security_md_names_exists() -> None:
    """docs/security.md maps each OWASP risk to tests: they must exist as written."""
    text = (REPO_ROOT / "docs" / "security.md").read_text()
    tests_dir = REPO_ROOT / "services" / "class_management_service" / "tests"
    named = re.findall(r"`((?:unit|integration|reliability|deployment|contract)/[\w/]+\.py)"
                       r"(?:::(\w+))?`", text)  # fmt: skip
    assert len(named) > 20
    for path, test in named:
        source = (tests_dir / path).read_text()
        if test:
            assert re.search(rf"def {test}\(", source), f"{path}::{test}"
    for risk in range(1, 11):
        assert f"**API{risk} " in text
