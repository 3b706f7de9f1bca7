"""Client authentication of the web service: CDS Hooks signed JWTs (PyJWT with cryptography).

What a request must carry (CDS Hooks 2.0.1 "Trusting CDS Clients" and its security best
practices): ``Authorization: Bearer <JWT>`` whose

- header ``alg`` is asymmetric (`ALGORITHMS`: ES384 and RS384 recommended; ``none`` and the HMAC
  algorithms are refused whatever the key), ``typ`` is ``JWT`` when given, ``kid`` names a key;
- ``iss`` is on the allowlist (`TrustedIssuer`), and the key comes from that issuer's JWK Set:
  a file given out of band, or the URL in the header's ``jku`` when that URL is on the issuer's
  ``jku`` allowlist;
- ``aud`` is the URL of the endpoint invoked (the service's public URL + the path);
- ``exp`` is in the future and at most `MAX_LIFETIME` seconds after ``iat``; ``jti`` was not seen
  before (a replay cache kept until the token expires).

Any failure is answered with 401 and no detail (`AuthError` names the reason for tests and the
log, never the token). Tokens are never logged or stored; the verified ``iss`` is what the audit
trail records.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ALGORITHMS",
    "MAX_LIFETIME",
    "AuthError",
    "ClientAuth",
    "TrustedIssuer",
]

ALGORITHMS: tuple[str, ...] = ("ES384", "RS384", "ES256", "RS256", "ES512", "RS512", "PS384")
"""Accepted signing algorithms: asymmetric only (the spec: SHALL NOT none, SHALL NOT symmetric)."""

MAX_LIFETIME = 3600
"""Longest accepted token lifetime (``exp`` - ``iat``, seconds): the replay cache's horizon."""

LEEWAY = 30
"""Clock skew allowed on ``exp``/``iat`` (seconds)."""

MAX_TOKEN_CHARS = 16_384
JWKS_TTL = 300.0
"""Seconds a JWK Set fetched from a ``jku`` URL is kept."""


class AuthError(Exception):
    """A request's client authentication failed (the service answers 401 without detail)."""


def _require_jwt() -> Any:
    try:
        import jwt
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            'PyJWT is not installed, run `pip install "hipscreen[service]"` for client '
            "authentication",
            name="jwt",
        ) from None
    return jwt


@dataclass(frozen=True)
class TrustedIssuer:
    """A CDS client the service trusts: its ``iss``, and where its public keys are.

    Args:
        iss: the exact ``iss`` its tokens carry.
        jwks: its JWK Set, given out of band (a dict, or read with `from_file`).
        jku: JWK Set URLs its tokens may name in the ``jku`` header (fetched, cached).
    """

    iss: str
    jwks: Mapping[str, Any] | None = None
    jku: tuple[str, ...] = ()

    @classmethod
    def from_file(cls, iss: str, path: str | Path, jku: Iterable[str] = ()) -> TrustedIssuer:
        """The issuer with its JWK Set read from a JSON file."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ValueError(f"{path}: a JWK Set must be a JSON object with a 'keys' array")
        return cls(iss=iss, jwks=data, jku=tuple(jku))


@dataclass
class _Replays:
    """The ``jti`` values seen, each kept until its token expires."""

    limit: int = 100_000
    seen: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, iss: str, jti: str, exp: float, now: float) -> None:
        with self.lock:
            if len(self.seen) >= self.limit:
                self.seen = {k: v for k, v in self.seen.items() if v + LEEWAY > now}
                if len(self.seen) >= self.limit:
                    raise AuthError("replay cache full")
            if (iss, jti) in self.seen:
                raise AuthError("jti replayed")
            self.seen[(iss, jti)] = exp


class ClientAuth:
    """Verifies the client JWT of each request (see the module docstring).

    Args:
        issuers: the trusted clients.
        algorithms: accepted algorithms, a subset of `ALGORITHMS`.
        max_lifetime: longest accepted ``exp - iat`` in seconds.
        fetch_timeout: seconds to wait for a ``jku`` URL.

    Raises:
        ValueError: no issuer, an algorithm that is not asymmetric, or an issuer without keys.
    """

    def __init__(
        self,
        issuers: Iterable[TrustedIssuer],
        *,
        algorithms: Iterable[str] = ("ES384", "RS384"),
        max_lifetime: int = MAX_LIFETIME,
        fetch_timeout: float = 5.0,
    ) -> None:
        self._jwt = _require_jwt()
        self.issuers = {issuer.iss: issuer for issuer in issuers}
        if not self.issuers:
            raise ValueError("client authentication needs at least one trusted issuer")
        for issuer in self.issuers.values():
            if issuer.jwks is None and not issuer.jku:
                raise ValueError(f"trusted issuer {issuer.iss!r} has neither a JWK Set nor a jku")
        self.algorithms = tuple(algorithms)
        unsafe = [a for a in self.algorithms if a not in ALGORITHMS]
        if unsafe or not self.algorithms:
            raise ValueError(
                f"algorithms must be asymmetric, among {', '.join(ALGORITHMS)} (got {unsafe})"
            )
        self.max_lifetime = max_lifetime
        self.fetch_timeout = fetch_timeout
        self._replays = _Replays()
        self._fetched: dict[str, tuple[float, Mapping[str, Any]]] = {}
        self._lock = threading.Lock()

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The verified claims of a request's ``Authorization`` header; `AuthError` otherwise."""
        jwt = self._jwt
        if authorization is None:
            raise AuthError("no Authorization header")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
            raise AuthError("not a bearer token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise AuthError("algorithm not accepted")
        if header.get("typ", "JWT") != "JWT":
            raise AuthError("typ is not JWT")
        iss = unverified.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise AuthError("issuer not trusted")
        key = self._key(issuer, header)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience,
                issuer=issuer.iss,
                leeway=LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as error:
            raise AuthError(f"token rejected: {type(error).__name__}") from None
        now = time.time()
        exp, iat, jti = claims["exp"], claims["iat"], claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > 512:
            raise AuthError("jti is not a text")
        if exp - iat > self.max_lifetime:
            raise AuthError("token lifetime too long")
        if iat > now + LEEWAY:
            raise AuthError("token issued in the future")
        self._replays.check(issuer.iss, jti, float(exp), now)
        return claims

    def _key(self, issuer: TrustedIssuer, header: Mapping[str, Any]) -> Any:
        jwt = self._jwt
        kid = header.get("kid")
        jku = header.get("jku")
        if jku is not None:
            if jku not in issuer.jku:
                raise AuthError("jku not on the issuer's allowlist")
            jwks = self._fetch(jku)
        elif issuer.jwks is not None:
            jwks = issuer.jwks
        else:
            raise AuthError("no key set for the issuer")
        keys = [k for k in jwks.get("keys", []) if isinstance(k, dict)]
        matching = [k for k in keys if k.get("kid") == kid] if kid is not None else keys
        if len(matching) != 1:
            raise AuthError("no single key with that kid")
        try:
            return jwt.PyJWK.from_dict(matching[0], algorithm=header.get("alg")).key
        except (jwt.PyJWTError, ValueError, KeyError, TypeError):
            raise AuthError("unusable key") from None

    def _fetch(self, url: str) -> Mapping[str, Any]:
        now = time.monotonic()
        with self._lock:
            cached = self._fetched.get(url)
            if cached is not None and now - cached[0] < JWKS_TTL:
                return cached[1]
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.fetch_timeout) as response:
                data = json.loads(response.read(1_000_001))
        except (OSError, ValueError):
            raise AuthError("jku could not be read") from None
        if not isinstance(data, dict):
            raise AuthError("jku is not a JWK Set")
        with self._lock:
            self._fetched[url] = (now, data)
        return data
