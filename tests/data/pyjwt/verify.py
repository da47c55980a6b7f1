#!/usr/bin/env python3
"""Check the committed PyJWT test data, reading only the files on disk.

Every "valid" case must decode with PyJWT at tokens.json's `now` (leeway 0), against
the JWK found by kid (no kid: the key registered for the header alg), allowing only
that JWK's alg, requiring iss/sub/aud/iat/nbf/exp and checking issuer and audience.
Every "invalid" case must fail, with an error that maps to its stated reason
(two checks are done here because PyJWT 2.15.1 lets them pass: duplicate JSON members,
since its json.loads keeps the last, and exp/nbf/iat that are not JSON numbers, since
it accepts int("1893459600")).
Also checks that the PEM files, certificates and JWKs describe the same keys.

    /tmp/venv/bin/python tests/data/pyjwt/verify.py    (PyJWT + cryptography)
"""

import datetime as dt
import json
import os
import sys
from unittest import mock

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = os.path.join(HERE, "keys")


def load(name):
    with open(os.path.join(HERE, name)) as f:
        return json.load(f)


def read(name):
    with open(os.path.join(KEYS, name), "rb") as f:
        return f.read()


def spki(key):
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


tokens = load("tokens.json")
jwks = load("jwks.json")["keys"]
jwks_all = load("jwks_with_secrets.json")["keys"]
NOW = tokens["now"]
ISS, AUD = "https://issuer.example", "api://orders"
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


# ---- keys: PEM files, certificates and JWKs agree
assert [k for k in jwks_all if k["kty"] != "oct"] == jwks, "jwks_with_secrets != jwks + oct"
pubs = {}
for name in ("rsa2048", "rsa3072", "ec-p256", "ec-p384", "ed25519"):
    pub = serialization.load_pem_public_key(read(f"{name}.pub.pem"))
    priv = serialization.load_pem_private_key(read(f"TEST-ONLY-{name}.key.pem"), None)
    check(spki(priv.public_key()) == spki(pub), f"{name}: private/public mismatch")
    check(read(f"TEST-ONLY-{name}.key.pem").startswith(b"-----BEGIN PRIVATE KEY-----"),
          f"{name}: private key not PKCS#8")
    pubs[name] = spki(pub)
check(read("rsa2048.pkcs1.pem").startswith(b"-----BEGIN RSA PUBLIC KEY-----"), "pkcs1 label")
check(spki(serialization.load_pem_public_key(read("rsa2048.pkcs1.pem"))) == pubs["rsa2048"],
      "pkcs1 key differs")
for name in ("rsa2048", "ec-p256"):
    cert = x509.load_pem_x509_certificate(read(f"{name}.cert.pem"))
    check(spki(cert.public_key()) == pubs[name], f"{name}: cert key differs")
    check(cert.not_valid_before_utc == dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
          and cert.not_valid_after_utc == dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc),
          f"{name}: cert validity")
    check(cert.issuer == cert.subject, f"{name}: not self-signed")
    cert.verify_directly_issued_by(cert)
by_kid = {k["kid"]: k for k in jwks_all}
for k in jwks:
    key = jwt.PyJWK(k).key
    check(spki(key) in pubs.values(), f"jwk {k['kid']}: not one of the PEM keys")
    check(k["use"] == "sig", f"jwk {k['kid']}: use")

# ---- tokens


class FrozenDatetime(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return dt.datetime.fromtimestamp(NOW, tz)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate member in {keys}")
    return dict(pairs)


REASON = [  # PyJWT exception -> reason; first match wins (subclasses first)
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidIssuerError, "issuer"),
    (jwt.InvalidAudienceError, "audience"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidAlgorithmError, "disallowed_algorithm"),
    (jwt.DecodeError, "malformed"),
]


def verify(case):
    """Return (None, claims) or (reason, error)."""
    token = case["token"]
    header = jwt.get_unverified_header(token)
    head, body, _ = token.split(".")
    try:
        claims = json.loads(jwt.utils.base64url_decode(body), object_pairs_hook=no_duplicates)
    except ValueError as e:
        return "malformed", e
    for c in ("exp", "nbf", "iat"):
        if c in claims and (type(claims[c]) not in (int, float)):
            return "malformed", TypeError(f"{c} is not a NumericDate: {claims[c]!r}")
    if "kid" in header:
        if header["kid"] not in by_kid:
            return "unknown_key", header["kid"]
        jwk = by_kid[header["kid"]]
    else:
        found = [k for k in jwks_all if k["alg"] == header["alg"]]
        if not found:
            return "unknown_key", header["alg"]
        jwk = found[0]
    try:
        with mock.patch("jwt.api_jwt.datetime", FrozenDatetime):
            got = jwt.decode(token, jwt.PyJWK(jwk), algorithms=[jwk["alg"]],
                             issuer=ISS, audience=AUD, leeway=0,
                             options={"require": ["iss", "sub", "aud", "iat", "nbf", "exp"]})
        return None, got
    except jwt.PyJWTError as e:
        for cls, reason in REASON:
            if isinstance(e, cls):
                return reason, e
        return "unmapped", e


names = set()
for case in tokens["cases"]:
    n = case["name"]
    check(n not in names, f"{n}: duplicate name")
    names.add(n)
    header = jwt.get_unverified_header(case["token"])
    check(header.get("alg") == case["alg"] and header.get("kid") == case["kid"],
          f"{n}: header {header} vs case alg/kid")
    check(header.get("typ") == ("JWT" if n.endswith("_typ_jwt") else "at+jwt"), f"{n}: typ")
    payload = json.loads(jwt.utils.base64url_decode(case["token"].split(".")[1]))
    check(payload == case["claims"], f"{n}: claims field differs from the token payload")
    if "payload_json" in case:
        check(jwt.utils.base64url_decode(case["token"].split(".")[1]).decode()
              == case["payload_json"], f"{n}: payload_json differs")
    reason, detail = verify(case)
    if case["expected"] == "valid":
        check(reason is None, f"{n}: expected valid, got {reason}: {detail!r}")
    else:
        check(reason == case["reason"],
              f"{n}: expected {case['reason']}, got {reason}: {detail!r}")
    print(f"{n:32} {case['expected']:8} {reason or 'ok':22} {type(detail).__name__}")

jtis = [c["claims"].get("jti") for c in tokens["cases"]]
check(len(jtis) == len(set(jtis)), "jti values not unique")

for f in failures:
    print("FAIL:", f)
print(f"{len(tokens['cases']) - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
