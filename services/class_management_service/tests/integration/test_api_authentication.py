"""jwt mode on the real stack: forged tokens are refused before anything is read or written;
the gateway's tokens (HS256, or RS256/ES256 with JWT_PUBLIC_KEY) name the caller."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from quart import Quart
from quart.testing.app import TestApp as LifespanOf
from quart.typing import TestClientProtocol as Client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service import metrics
from services.class_management_service.app import create_app
from services.class_management_service.config import AuthMode, Settings
from services.class_management_service.tests.support.api import (
    create_class,
    json_of,
    problem_of,
)
from services.class_management_service.tests.support.tokens import (
    JWT_SETTINGS,
    TEST_SECRET,
    bearer,
    claims_for,
    token_for,
)

pytestmark = pytest.mark.relay_off  # the outbox rows stay, to be counted

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token PyJWT would refuse to make: unsigned, or HMAC-signed with any bytes."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


async def _app(settings: Settings) -> AsyncIterator[Quart]:
    app = create_app(settings)
    async with LifespanOf(app, startup_timeout=30, shutdown_timeout=30):
        yield app


@pytest.fixture
def jwt_settings(settings: Settings) -> Settings:
    return Settings(**{**settings.model_dump(), **JWT_SETTINGS})


@pytest.fixture
async def jwt_client(jwt_settings: Settings) -> AsyncIterator[Client]:
    async for app in _app(jwt_settings):
        yield app.test_client()


def repository_operations() -> float:
    """Repository calls so far in this process (each is timed once, read or write)."""
    return sum(
        sample.value
        for metric in metrics.DB_OPERATION_DURATION.collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
    )


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    tables = ("classes", "students", "class_student_association", "event_outbox")
    async with engine.connect() as connection:
        return {
            table: int(await connection.scalar(text(f"SELECT count(*) FROM {table}")))
            for table in tables
        }


@dataclass(frozen=True)
class Forged:
    id: str
    headers: Callable[[str], dict[str, str]]  # from the victim's user id
    status: int
    code: str


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _forgeries() -> list[Forged]:
    now = int(time.time())
    hs = {"alg": "HS256", "typ": "JWT"}
    # fmt: off
    return [
        Forged("no token", lambda v: {}, 401, "AUTHENTICATION_REQUIRED"),
        Forged("no token, victim's X-User-ID", lambda v: {"X-User-ID": v}, 401,
               "AUTHENTICATION_REQUIRED"),
        Forged("empty Authorization", lambda v: {"Authorization": " "}, 401,
               "AUTHENTICATION_REQUIRED"),
        Forged("Basic, not Bearer", lambda v: {"Authorization": "Basic dTpw"}, 401,
               "INVALID_TOKEN"),
        Forged("Bearer without a token", lambda v: {"Authorization": "Bearer "}, 401,
               "INVALID_TOKEN"),
        Forged("not a JWT", lambda v: _auth("not-a-jwt"), 401, "INVALID_TOKEN"),
        Forged("three dots of garbage", lambda v: _auth("a.b.c"), 401, "INVALID_TOKEN"),
        Forged("alg none", lambda v: _auth(hand_made({"alg": "none"}, claims_for(v), None)),
               401, "INVALID_TOKEN"),
        Forged("alg none, signed anyway",
               lambda v: _auth(hand_made({"alg": "none"}, claims_for(v), TEST_SECRET.encode())),
               401, "INVALID_TOKEN"),
        Forged("HS256, wrong key",
               lambda v: _auth(token_for(v, key="another-secret-of-32-bytes-or-more!")),
               401, "INVALID_TOKEN"),
        Forged("HS256, signature of another token",
               lambda v: _auth(token_for(v).rsplit(".", 1)[0] + "."
                               + token_for("someone").rsplit(".", 1)[1]),
               401, "INVALID_TOKEN"),
        Forged("RS256 against the HS key",
               lambda v: _auth(token_for(v, key=RSA_KEY, algorithm="RS256")),
               401, "INVALID_TOKEN"),
        Forged("ES256 against the HS key",
               lambda v: _auth(token_for(v, key=EC_KEY, algorithm="ES256")),
               401, "INVALID_TOKEN"),
        Forged("HS512 (not allowed) with the right key",
               lambda v: _auth(token_for(v, algorithm="HS512", key=TEST_SECRET * 2)),
               401, "INVALID_TOKEN"),
        Forged("expired", lambda v: _auth(token_for(v, exp=now - 3600)), 401, "TOKEN_EXPIRED"),
        Forged("expired beyond the leeway", lambda v: _auth(token_for(v, exp=now - 31)),
               401, "TOKEN_EXPIRED"),
        Forged("no exp", lambda v: _auth(token_for(v, exp=None)), 401, "INVALID_TOKEN"),
        Forged("nbf in the future", lambda v: _auth(token_for(v, nbf=now + 3600)),
               401, "INVALID_TOKEN"),
        Forged("iat in the future", lambda v: _auth(token_for(v, iat=now + 3600)),
               401, "INVALID_TOKEN"),
        Forged("wrong aud", lambda v: _auth(token_for(v, aud="another-service")),
               401, "INVALID_TOKEN"),
        Forged("no aud", lambda v: _auth(token_for(v, aud=None)), 401, "INVALID_TOKEN"),
        Forged("wrong iss", lambda v: _auth(token_for(v, iss="evil-gateway")),
               401, "INVALID_TOKEN"),
        Forged("no iss", lambda v: _auth(token_for(v, iss=None)), 401, "INVALID_TOKEN"),
        Forged("no sub", lambda v: _auth(token_for(v, sub=None)), 401, "INVALID_TOKEN"),
        Forged("blank sub", lambda v: _auth(token_for("   ")), 401, "INVALID_TOKEN"),
        Forged("sub not a string", lambda v: _auth(token_for(v, sub=12345)), 401,
               "INVALID_TOKEN"),
        Forged("256-character sub", lambda v: _auth(token_for("u" * 256)), 401, "INVALID_TOKEN"),
        Forged("10 kB sub", lambda v: _auth(token_for("u" * 10_240)), 401, "INVALID_TOKEN"),
        Forged("sub with a control character", lambda v: _auth(token_for(v + "\x01")), 401,
               "INVALID_TOKEN"),
        Forged("own token, victim's X-User-ID",
               lambda v: {**bearer("mallory"), "X-User-ID": v}, 401, "IDENTITY_MISMATCH"),
        Forged("victim's token, other X-User-ID",
               lambda v: {**bearer(v), "X-User-ID": "mallory"}, 401, "IDENTITY_MISMATCH"),
        Forged("victim's token, 100 kB X-User-ID",
               lambda v: {**bearer(v), "X-User-ID": "u" * 102_400}, 401, "IDENTITY_MISMATCH"),
        Forged("100 kB Authorization", lambda v: _auth("a" * 102_400), 401, "INVALID_TOKEN"),
        Forged("HS256 header, no signature",
               lambda v: _auth(hand_made(hs, claims_for(v), None)), 401, "INVALID_TOKEN"),
    ]
    # fmt: on


FORGERIES = _forgeries()
# A read, a change of the victim's class and a creation: none of them may run.
TARGETS = [
    ("GET", "/v1/classes/{class_id}", None),
    ("PUT", "/v1/classes/{class_id}", {"name": "pwned"}),
    ("POST", "/v1/classes/students", {"person_name": {"first_name": "P", "last_name": "W"}}),
]


@pytest.mark.parametrize("forged", FORGERIES, ids=[f.id for f in FORGERIES])
async def test_a_forged_token_is_refused_before_anything_is_read_or_written(
    jwt_client: Client, engine: AsyncEngine, user_id: str, forged: Forged
) -> None:
    victims_class = await create_class(jwt_client, bearer(user_id), name="Victim's 9A")
    headers = forged.headers(user_id)
    token_given = bool(headers.get("Authorization", "").strip())
    rows_before = await row_counts(engine)
    operations_before = repository_operations()

    for method, path, body in TARGETS:
        response = await jwt_client.open(
            path.format(class_id=victims_class["id"]),
            method=method,
            headers=headers,
            **({"json": body} if body is not None else {}),
        )
        problem = await problem_of(response, forged.status, forged.code)
        challenge = response.headers.get("WWW-Authenticate", "")
        assert challenge.startswith("Bearer"), challenge
        assert ('error="invalid_token"' in challenge) == token_given, challenge
        assert victims_class["id"] not in await response.get_data(as_text=True)
        assert "Victim" not in problem["detail"]

    assert repository_operations() == operations_before, "a repository call ran"
    assert await row_counts(engine) == rows_before
    reread = await jwt_client.get(f"/v1/classes/{victims_class['id']}", headers=bearer(user_id))
    assert (await json_of(reread, 200))["version"] == victims_class["version"]


async def test_the_token_names_the_caller(jwt_client: Client, user_id: str) -> None:
    created = await create_class(jwt_client, bearer(user_id))
    # The same user with another token, with a matching X-User-ID, and within the leeway.
    for headers in (
        bearer(user_id),
        {**bearer(user_id), "X-User-ID": user_id},
        bearer(user_id, exp=int(time.time()) - 10),
    ):
        listed = await json_of(await jwt_client.get("/v1/classes", headers=headers), 200)
        assert [c["id"] for c in listed["classes"]] == [created["id"]]
    others = await json_of(await jwt_client.get("/v1/classes", headers=bearer("other")), 200)
    assert others["classes"] == []


@pytest.mark.parametrize(
    ("algorithm", "key"), [("RS256", RSA_KEY), ("ES256", EC_KEY)], ids=["RS256", "ES256"]
)
async def test_public_key_algorithms_verify_with_jwt_public_key(
    settings: Settings, user_id: str, algorithm: str, key: Any
) -> None:
    configured = Settings(
        **{
            **settings.model_dump(),
            "AUTH_MODE": AuthMode.JWT,
            "JWT_ALGORITHMS": algorithm,
            "JWT_PUBLIC_KEY": public_pem(key),
            "JWT_ISSUER": None,
        }
    )
    async for app in _app(configured):
        client = app.test_client()
        token = token_for(user_id, key=key, algorithm=algorithm, iss=None)
        created = await create_class(client, {"Authorization": f"Bearer {token}"})
        assert created["name"] == "9A"
        # An HS256 token signed with the public key's PEM (the classic confusion) is refused.
        confused = hand_made(
            {"alg": "HS256"}, claims_for(user_id, iss=None), public_pem(key).encode()
        )
        refused = await client.get("/v1/classes", headers={"Authorization": f"Bearer {confused}"})
        await problem_of(refused, 401, "INVALID_TOKEN")
        wrong_key = token_for(
            user_id,
            key=rsa.generate_private_key(65537, 2048)
            if algorithm == "RS256"
            else ec.generate_private_key(ec.SECP256R1()),
            algorithm=algorithm,
            iss=None,
        )
        refused = await client.get("/v1/classes", headers={"Authorization": f"Bearer {wrong_key}"})
        await problem_of(refused, 401, "INVALID_TOKEN")


async def test_trusted_header_mode_ignores_tokens_and_asks_for_no_scheme(
    client: Client, user_id: str
) -> None:
    missing = await client.get("/v1/classes", headers=bearer(user_id))
    await problem_of(missing, 401, "AUTHENTICATION_REQUIRED")
    assert "WWW-Authenticate" not in missing.headers
    listed = await client.get("/v1/classes", headers={**bearer("x"), "X-User-ID": user_id})
    await json_of(listed, 200)


async def test_openapi_documents_the_bearer_scheme_in_jwt_mode(
    jwt_client: Client, client: Client
) -> None:
    document = await json_of(await jwt_client.get("/openapi.json"), 200)
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for operation in item.values():
            secured = operation.get("security") == [{"bearerAuth": []}]
            assert secured == path.startswith("/v1/"), (path, operation.get("security"))
            for parameter in operation.get("parameters", ()):
                if parameter["name"] == "X-User-ID":
                    assert parameter["required"] is False
    trusted = await json_of(await client.get("/openapi.json"), 200)
    assert "securitySchemes" not in trusted["components"]
