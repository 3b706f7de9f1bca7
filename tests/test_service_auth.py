"""Client authentication (signed JWTs, real keys) and CORS of the web service."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")
jwt = pytest.importorskip("jwt", reason="PyJWT is not installed (the service extra)")

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from hipscreen import _cli, _service  # noqa: E402
from hipscreen._service_auth import AuthError, ClientAuth, TrustedIssuer  # noqa: E402

ISS = "https://ehr.example.org"
BASE = "http://testserver"
SERVICE = f"{BASE}/cds-services/hipscreen"
FORM = {"tightness": {"iliopsoas": "severe"}, "strength": {"gluteus_maximus": 3}}


def _call() -> dict[str, Any]:
    return {
        "hook": "org.hipscreen.intake-submit",
        "hookInstance": str(uuid.uuid4()),
        "context": {"intakeForm": FORM},
    }


class Keys:
    """An EC P-384 and an RSA key of one client, and its public JWK Set."""

    def __init__(self) -> None:
        self.ec = ec.generate_private_key(ec.SECP384R1())
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        self.jwks = {
            "keys": [
                {**ec_jwk, "kid": "ec-1", "alg": "ES384", "use": "sig"},
                {**rsa_jwk, "kid": "rsa-1", "alg": "RS384", "use": "sig"},
            ]
        }

    def token(
        self,
        *,
        alg: str = "ES384",
        aud: Any = SERVICE,
        iss: str = ISS,
        lifetime: int = 300,
        jti: str | None = None,
        headers: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        now = int(time.time())
        claims = {"iss": iss, "aud": aud, "iat": now, "exp": now + lifetime}
        claims["jti"] = jti or str(uuid.uuid4())
        for name in drop:
            claims.pop(name)
        key = self.ec if alg.startswith("ES") else self.rsa
        kid = "ec-1" if alg.startswith("ES") else "rsa-1"
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, **(headers or {})})


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def app_and_client(keys: Keys) -> Iterator[tuple[Any, TestClient]]:
    auth = ClientAuth([TrustedIssuer(iss=ISS, jwks=keys.jwks)], algorithms=("ES384", "RS384"))
    app = _service.create_app(auth=auth, public_url=BASE, cors_origins=["http://localhost:8080"])
    with TestClient(app) as client:
        yield app, client


@pytest.fixture
def client(app_and_client: tuple[Any, TestClient]) -> TestClient:
    return app_and_client[1]


def _post(client: TestClient, token: str | None, path: str = "/cds-services/hipscreen") -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    body = _call() if path.endswith("hipscreen") else FORM
    return client.post(path, json=body, headers=headers)


def test_a_signed_es384_token_is_accepted_and_its_issuer_audited(
    app_and_client: tuple[Any, TestClient], keys: Keys
) -> None:
    app, client = app_and_client
    answer = _post(client, keys.token())
    assert answer.status_code == 200
    assert answer.json()["cards"]
    assert app.state.audit.assessments()[0]["client"] == ISS


def test_a_signed_rs384_token_is_accepted(client: TestClient, keys: Keys) -> None:
    assert _post(client, keys.token(alg="RS384")).status_code == 200


def test_an_audience_list_holding_the_endpoint_is_accepted(client: TestClient, keys: Keys) -> None:
    assert _post(client, keys.token(aud=["https://other", SERVICE])).status_code == 200


def test_assess_needs_a_token_for_its_own_url(client: TestClient, keys: Keys) -> None:
    assert _post(client, keys.token(), "/assess").status_code == 401
    assert _post(client, keys.token(aud=f"{BASE}/assess"), "/assess").status_code == 200


def _none_token() -> str:
    return jwt.encode(
        {"iss": ISS, "aud": SERVICE, "exp": int(time.time()) + 60, "jti": "n"},
        None,
        algorithm="none",
    )


def _hmac_token(keys: Keys) -> str:
    """HS256 signed with the public key as the secret: the classic key-confusion attack."""
    public = keys.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"iss": ISS, "aud": SERVICE, "iat": now, "exp": now + 60, "jti": "h"}
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda k: None, id="no-header"),
        pytest.param(lambda k: "not.a.jwt", id="garbage"),
        pytest.param(lambda k: _none_token(), id="alg-none"),
        pytest.param(_hmac_token, id="hmac-with-public-key"),
        pytest.param(lambda k: k.token(alg="PS384"), id="alg-not-configured"),
        pytest.param(lambda k: k.token(aud="https://elsewhere/cds-services/hipscreen"), id="aud"),
        pytest.param(lambda k: k.token(iss="https://evil.example"), id="untrusted-iss"),
        pytest.param(lambda k: k.token(lifetime=-120), id="expired"),
        pytest.param(lambda k: k.token(lifetime=7200), id="lifetime-too-long"),
        pytest.param(lambda k: k.token(drop=("jti",)), id="no-jti"),
        pytest.param(lambda k: k.token(drop=("exp",)), id="no-exp"),
        pytest.param(lambda k: k.token(headers={"kid": "unknown"}), id="unknown-kid"),
        pytest.param(lambda k: k.token(headers={"typ": "at+jwt"}), id="typ"),
        pytest.param(
            lambda k: k.token(headers={"jku": "https://evil.example/jwks.json"}),
            id="jku-not-allowed",
        ),
    ],
)
def test_bad_tokens_get_401_with_no_detail(
    client: TestClient, keys: Keys, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = make(keys)
    with caplog.at_level(logging.INFO, logger="hipscreen.service"):
        answer = _post(client, token)
    assert answer.status_code == 401
    assert answer.content == b""
    assert answer.headers["www-authenticate"] == "Bearer"
    if token:
        assert token not in caplog.text
        assert all(part not in caplog.text for part in token.split(".") if len(part) > 8)


def test_a_token_is_refused_the_second_time(client: TestClient, keys: Keys) -> None:
    token = keys.token(jti="once")
    assert _post(client, token).status_code == 200
    assert _post(client, token).status_code == 401


def test_feedback_needs_a_token_too(client: TestClient, keys: Keys) -> None:
    entry = {
        "card": str(uuid.uuid4()),
        "outcome": "overridden",
        "overrideReason": {"userComment": "not now"},
        "outcomeTimestamp": "2026-12-07T01:02:03Z",
    }
    url = "/cds-services/hipscreen/feedback"
    assert client.post(url, json={"feedback": [entry]}).status_code == 401
    token = keys.token(aud=f"{BASE}{url}")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post(url, json={"feedback": [entry]}, headers=headers).status_code == 200


def test_discovery_stays_open(client: TestClient) -> None:
    assert client.get("/cds-services").status_code == 200


class _Jwks(BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(type(self).body)))
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_jku_on_the_allowlist_supplies_the_keys(keys: Keys) -> None:
    _Jwks.body = json.dumps(keys.jwks).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    jku = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    try:
        auth = ClientAuth([TrustedIssuer(iss=ISS, jku=(jku,))])
        with TestClient(_service.create_app(auth=auth, public_url=BASE)) as client:
            assert _post(client, keys.token(headers={"jku": jku})).status_code == 200
            assert _post(client, keys.token()).status_code == 401  # no jku, no key set
    finally:
        server.shutdown()
        server.server_close()


def test_client_auth_needs_the_public_url(keys: Keys) -> None:
    """The audience is never taken from the Host header, which the caller chooses."""
    auth = ClientAuth([TrustedIssuer(iss=ISS, jwks=keys.jwks)])
    with pytest.raises(ValueError, match="public_url"):
        _service.create_app(auth=auth)
    app = _service.create_app(auth=auth, public_url="https://cds.example.org")
    with TestClient(app) as client:
        token = keys.token(aud=SERVICE)  # http://testserver/..., the Host header's URL
        assert _post(client, token).status_code == 401
        token = keys.token(aud="https://cds.example.org/cds-services/hipscreen")
        assert _post(client, token).status_code == 200


def test_client_auth_refuses_symmetric_or_none_algorithms(keys: Keys) -> None:
    issuer = TrustedIssuer(iss=ISS, jwks=keys.jwks)
    for algorithms in (("HS256",), ("none",), ()):
        with pytest.raises(ValueError, match="asymmetric"):
            ClientAuth([issuer], algorithms=algorithms)
    with pytest.raises(ValueError, match="trusted issuer"):
        ClientAuth([])
    with pytest.raises(AuthError):
        ClientAuth([issuer]).verify("Basic dXNlcjpwYXNz", SERVICE)


def test_cors_preflight_from_an_allowed_origin(client: TestClient) -> None:
    answer = client.options(
        "/cds-services/hipscreen",
        headers={
            "Origin": "http://localhost:8080",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "http://localhost:8080"
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    got = client.get("/cds-services", headers={"Origin": "http://localhost:8080"})
    assert got.headers["access-control-allow-origin"] == "http://localhost:8080"


def test_cors_preflight_from_another_origin_is_not_allowed(client: TestClient) -> None:
    answer = client.options(
        "/cds-services/hipscreen",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in answer.headers


def test_client_auth_is_on_by_default_beyond_loopback(tmp_path: Any, keys: Keys) -> None:
    assert _service.client_auth_from([], [], host="127.0.0.1", disabled=False) is None
    with pytest.raises(ValueError, match="needs client authentication"):
        _service.client_auth_from([], [], host="0.0.0.0", disabled=False)
    assert _service.client_auth_from([], [], host="0.0.0.0", disabled=True) is None
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(keys.jwks), encoding="utf-8")
    auth = _service.client_auth_from([f"{ISS}={jwks}"], [], host="0.0.0.0", disabled=False)
    assert auth is not None
    assert list(auth.issuers) == [ISS]
    with pytest.raises(ValueError, match="ISS=VALUE"):
        _service.client_auth_from(["no-equals"], [], host="0.0.0.0", disabled=False)


def test_serve_beyond_loopback_without_an_issuer_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _cli.main(["serve", "--host", "0.0.0.0", "--audit-db", "sqlite://"]) == 2
    assert "--trusted-issuer" in capsys.readouterr().err


def test_serve_with_an_issuer_but_no_public_url_is_a_usage_error(
    tmp_path: Any, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(keys.jwks), encoding="utf-8")
    argv = ["serve", "--trusted-issuer", f"{ISS}={jwks}", "--audit-db", "sqlite://"]
    assert _cli.main(argv) == 2
    assert "--public-url" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-concurrent", "0"), ("--max-inflight-bytes", "-5"), ("--read-timeout", "0")],
)
def test_serve_refuses_bad_limits(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    assert _cli.main(["serve", option, value, "--audit-db", "sqlite://"]) == 2
    assert option.lstrip("-").replace("-", "_") in capsys.readouterr().err.replace("-", "_")
