"""Single sign-on with the library's OpenID Connect provider: what statusd asks it and how it checks the answer.

The page uses the authorization-code flow with PKCE (RFC 7636, from Authlib);
the remote command the device flow (RFC 8628), run by the daemon so that the
client secret never leaves the server. The endpoints come from the issuer's
discovery document; an ID token counts only once its signature (the issuer's
JWKS), issuer, audience, expiry and nonce are checked (joserfc, Authlib's JOSE
library). Who the person is *in statusd* is decided by `match`: the provider
only says who signed in, never their role or sites.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import structlog
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from statusd.config.load import SsoConfig
from statusd.desk.accounts import Accounts, Person

log = structlog.get_logger()

SCOPE = "openid email profile"
ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]
METADATA_FOR = 3600.0  # the discovery document and JWKS are fetched again after this
LEEWAY = 60  # seconds of clock difference allowed on exp and iat
TIMEOUT = aiohttp.ClientTimeout(total=10)
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
UNKNOWN = ("you signed in at the library's identity provider, but no statusd account is linked to you; "
           "ask the person who runs statusd to link yours (statusd user edit NAME --email … or --sso-subject …)")


class SsoRefused(Exception):
    """A sign-on that does not let the person in, with the one sentence to show."""


class Pending(Exception):
    """The device flow's person has not finished at the provider yet (or asked to slow down)."""

    def __init__(self, slow_down: bool = False) -> None:
        super().__init__("authorization pending")
        self.slow_down = slow_down


@dataclass(frozen=True)
class Started:
    """One authorization-code attempt, kept server-side under the pre-session cookie."""

    state: str
    nonce: str
    verifier: str
    url: str
    at: float


class OpenIdClient:
    """statusd as a client of one OpenID Connect provider."""

    def __init__(self, config: SsoConfig, redirect_uri: str) -> None:
        self.config = config
        self.redirect_uri = redirect_uri
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, KeySet] | None = None

    # -- the provider's documents -------------------------------------------

    async def metadata(self) -> dict[str, Any]:
        """The discovery document (its issuer must be the configured one, as OpenID Discovery requires)."""
        if self._metadata and time.monotonic() - self._metadata[0] < METADATA_FOR:
            return self._metadata[1]
        url = f"{self.config.issuer}/.well-known/openid-configuration"
        document = await _get_json(url)
        if document.get("issuer", "").rstrip("/") != self.config.issuer:
            raise SsoRefused(f"the identity provider at {url} names itself {document.get('issuer')!r}, "
                             f"not the configured issuer {self.config.issuer}; check desk.sso.issuer")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(key), str):
                raise SsoRefused(f"the identity provider's discovery document {url} has no {key}")
        self._metadata = (time.monotonic(), document)
        return document

    async def keys(self, fresh: bool = False) -> KeySet:
        if self._keys and not fresh and time.monotonic() - self._keys[0] < METADATA_FOR:
            return self._keys[1]
        keys = KeySet.import_key_set(await _get_json((await self.metadata())["jwks_uri"]))  # type: ignore[arg-type]
        self._keys = (time.monotonic(), keys)
        return keys

    # -- the page: authorization code with PKCE -------------------------------

    async def start(self) -> Started:
        """A new attempt: its state, nonce and PKCE verifier, and where to send the browser."""
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        query = {"response_type": "code", "client_id": self.config.client_id, "redirect_uri": self.redirect_uri,
                 "scope": SCOPE, "state": state, "nonce": nonce,
                 "code_challenge": _challenge(verifier), "code_challenge_method": "S256"}
        endpoint = (await self.metadata())["authorization_endpoint"]
        return Started(state, nonce, verifier, f"{endpoint}?{urlencode(query)}", time.monotonic())

    async def finish(self, started: Started, code: str) -> dict[str, Any]:
        """The checked ID token's claims for the code the provider sent back."""
        answer = await self.token({"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": self.redirect_uri, "code_verifier": started.verifier})
        return await self.with_email(await self.verify(str(answer.get("id_token", "")), started.nonce), answer)

    # -- the remote command: device flow ---------------------------------------

    async def device_start(self) -> dict[str, Any]:
        """The provider's device_code, user_code and verification address (RFC 8628)."""
        endpoint = (await self.metadata()).get("device_authorization_endpoint")
        if not isinstance(endpoint, str):
            raise SsoRefused("the library's identity provider does not offer the device flow; "
                             "log in with your statusd password instead (statusd login URL)")
        status, answer = await self._post(endpoint, {"scope": SCOPE})
        if status != 200 or "device_code" not in answer:
            raise SsoRefused(f"the identity provider refused to start a device sign-in ({_why(answer, status)})")
        return answer

    async def device_poll(self, device_code: str) -> dict[str, Any]:
        """The checked ID token's claims once the person approved; Pending until then."""
        answer = await self.token({"grant_type": DEVICE, "device_code": device_code})
        return await self.with_email(await self.verify(str(answer.get("id_token", "")), None), answer)

    # -- talking to the token endpoint, checking the ID token -----------------

    async def token(self, form: dict[str, str]) -> dict[str, Any]:
        status, answer = await self._post((await self.metadata())["token_endpoint"], form)
        error = answer.get("error")
        if error in ("authorization_pending", "slow_down"):
            raise Pending(slow_down=error == "slow_down")
        if status != 200:
            log.warning("desk_sso_token_refused", status=status, error=str(error)[:60])
            raise SsoRefused(f"the identity provider did not accept the sign-in ({_why(answer, status)}); "
                             "start again")
        return answer

    async def verify(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        """The ID token's claims once its signature, iss, aud, exp and nonce are right; else SsoRefused."""
        try:
            try:
                decoded = jwt.decode(id_token, await self.keys(), algorithms=ALGORITHMS)
            except JoseError:
                decoded = jwt.decode(id_token, await self.keys(fresh=True), algorithms=ALGORITHMS)  # keys rotated
            wanted: dict[str, Any] = {"iss": {"essential": True, "value": self.config.issuer},
                                      "aud": {"essential": True, "value": self.config.client_id},
                                      "sub": {"essential": True}, "exp": {"essential": True}}
            if nonce is not None:
                wanted["nonce"] = {"essential": True, "value": nonce}
            jwt.JWTClaimsRegistry(leeway=LEEWAY, **wanted).validate(decoded.claims)
        except (JoseError, ValueError) as err:
            log.warning("desk_sso_id_token_refused", why=type(err).__name__)
            raise SsoRefused("the identity provider's answer did not check out (its ID token is not for "
                             "this statusd, expired, or not signed by the provider); start again") from err
        claims = dict(decoded.claims)
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.config.client_id:
            raise SsoRefused("the identity provider's ID token was issued to another application; start again")
        return claims

    async def with_email(self, claims: dict[str, Any], answer: Mapping[str, Any]) -> dict[str, Any]:
        """The claims, with the e-mail from the userinfo endpoint when the ID token leaves it out.

        Many providers (oidc-provider by default) put only `sub` in the ID token when they
        also hand out an access token; userinfo then says the rest. Its answer counts only
        for the same subject (OpenID Connect Core 5.3.2).
        """
        endpoint = (await self.metadata()).get("userinfo_endpoint")
        if "email" in claims or not isinstance(endpoint, str) or not answer.get("access_token"):
            return claims
        info = await _get_json(endpoint, str(answer["access_token"]))
        if info.get("sub") != claims["sub"]:
            raise SsoRefused("the identity provider's userinfo answer is about another person; start again")
        return {**claims, **{k: info[k] for k in ("email", "email_verified", "name") if k in info}}

    async def _post(self, url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        secret = self.config.client_secret.read()
        if secret is None:
            raise SsoRefused(f"single sign-on is not ready: its client secret ({self.config.client_secret.describe()}) "
                             "is not set; ask the person who runs statusd")
        # client_secret_basic: both parts form-encoded before base64 (RFC 6749, 2.3.1).
        pair = f"{quote(self.config.client_id, safe='')}:{quote(secret, safe='')}"
        headers = {"Accept": "application/json", "Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session, \
                    session.post(url, data=form, headers=headers) as answer:
                body = await answer.json(content_type=None)
                return answer.status, body if isinstance(body, dict) else {}
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise SsoRefused(f"cannot reach the identity provider at {url} ({type(err).__name__})") from err


def match(accounts: Accounts, claims: Mapping[str, Any]) -> Person:
    """The statusd account of the signed-in person: by subject, else by verified e-mail (then linked)."""
    subject = str(claims["sub"])
    email = claims.get("email") if claims.get("email_verified") is True else None
    person = accounts.by_sso(subject, str(email) if isinstance(email, str) else None)
    if person is None:
        log.warning("desk_sso_unknown", subject=subject[:80])
        raise SsoRefused(UNKNOWN)
    if person.disabled:
        log.warning("desk_sso_disabled", account=person.name)
        raise SsoRefused(f"the account {person.name} is disabled; ask the person who runs statusd")
    if person.sso_subject is None:
        # Matched on the e-mail: from now on the subject, which the provider never reassigns, decides.
        person = accounts.link(person.name, None, subject)
    log.info("desk_sso_login", account=person.name)
    return person


async def _get_json(url: str, bearer: str | None = None) -> dict[str, Any]:
    headers = {"Accept": "application/json", **({"Authorization": f"Bearer {bearer}"} if bearer else {})}
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(url, headers=headers) as answer:
            if answer.status != 200:
                raise SsoRefused(f"the identity provider answered HTTP {answer.status} for {url}")
            body = await answer.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise SsoRefused(f"cannot reach the identity provider at {url} ({type(err).__name__})") from err
    if not isinstance(body, dict):
        raise SsoRefused(f"the identity provider's {url} is not a JSON object")
    return body


def _why(answer: Mapping[str, Any], status: int) -> str:
    return str(answer.get("error_description") or answer.get("error") or f"HTTP {status}")[:200]


def _challenge(verifier: str) -> str:
    """PKCE's S256 code challenge (Authlib's, which its stubs leave untyped)."""
    challenge: str = create_s256_code_challenge(verifier)  # type: ignore[no-untyped-call]
    return challenge
