#!/usr/bin/env python3
"""Generate JWT interop test data for meshguard with an independent implementation.

What it does
    Creates fresh TEST-ONLY keys (RSA 2048/3072, EC P-256/P-384, Ed25519 and three
    HMAC secrets), writes them under keys/, writes jwks.json (public keys, one JWK
    per key+alg pair), jwks_with_secrets.json (the same plus the HMAC `oct` keys)
    and tokens.json: valid and invalid JWTs minted by PyJWT for every algorithm the
    verifier supports (HS256/384/512, RS256/384/512, PS256/384/512, ES256, ES384,
    EdDSA). All claims are fixed around NOW = 1893456000 (2030-01-01T00:00:00Z);
    verify the tokens as if the current time were NOW.

Versions used for the committed data
    PyJWT 2.15.1, cryptography 50.0.2 (Python 3.11).

How to rerun (regenerates ALL keys and tokens, so every file changes)
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install PyJWT cryptography
    /tmp/venv/bin/python tests/data/pyjwt/generate.py
    /tmp/venv/bin/python tests/data/pyjwt/verify.py

Every private key and secret written here is a freshly generated TEST-ONLY key.
Never use them for anything but tests.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import secrets

import cryptography
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = os.path.join(HERE, "keys")

NOW = 1893456000  # 2030-01-01T00:00:00Z: the time to verify at
ISS = "https://issuer.example"
AUD = "api://orders"
AUD_ARRAY = ["api://orders", "api://other"]

# (alg, kid, key name)
ALGS = [
    ("HS256", "hs256", "hmac256"),
    ("HS384", "hs384", "hmac384"),
    ("HS512", "hs512", "hmac512"),
    ("RS256", "rs256", "rsa2048"),
    ("RS384", "rs384", "rsa3072"),
    ("RS512", "rs512", "rsa2048"),
    ("PS256", "ps256", "rsa2048"),
    ("PS384", "ps384", "rsa3072"),
    ("PS512", "ps512", "rsa2048"),
    ("ES256", "es256", "ec-p256"),
    ("ES384", "es384", "ec-p384"),
    ("EdDSA", "eddsa", "ed25519"),
]
KID = {alg: kid for alg, kid, _ in ALGS}
KEYNAME = {alg: name for alg, _, name in ALGS}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def uint(n: int, size: int = 0) -> str:
    """Big-endian unsigned integer as base64url (RFC 7518 section 6)."""
    size = size or (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(size, "big"))


def write(path: str, data) -> None:
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)


# ---------------------------------------------------------------- keys

def make_keys():
    priv = {
        "rsa2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa3072": rsa.generate_private_key(public_exponent=65537, key_size=3072),
        "ec-p256": ec.generate_private_key(ec.SECP256R1()),
        "ec-p384": ec.generate_private_key(ec.SECP384R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    hmac_secrets = {
        "hmac256": secrets.token_bytes(32),
        "hmac384": secrets.token_bytes(48),
        "hmac512": secrets.token_bytes(64),
    }
    return priv, hmac_secrets


def self_signed_cert(name: str, key) -> bytes:
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"meshguard TEST-ONLY {name}"),
    ])
    utc = datetime.timezone.utc
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=utc))
        .not_valid_after(datetime.datetime(2099, 1, 1, tzinfo=utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def write_keys(priv):
    os.makedirs(KEYS, exist_ok=True)
    for name, key in priv.items():
        write(os.path.join(KEYS, f"TEST-ONLY-{name}.key.pem"), key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
        write(os.path.join(KEYS, f"{name}.pub.pem"), key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        ))
    write(os.path.join(KEYS, "rsa2048.pkcs1.pem"), priv["rsa2048"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1,
    ))
    for name in ("rsa2048", "ec-p256"):
        write(os.path.join(KEYS, f"{name}.cert.pem"), self_signed_cert(name, priv[name]))


def public_jwk(key, kid: str, alg: str) -> dict:
    pub = key.public_key()
    head = {"kid": kid, "alg": alg, "use": "sig"}
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        return {"kty": "RSA", **head, "n": uint(nums.n), "e": uint(nums.e)}
    if isinstance(pub, ec.EllipticCurvePublicKey):
        nums = pub.public_numbers()
        crv, size = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48)}[pub.curve.name]
        return {"kty": "EC", **head, "crv": crv,
                "x": uint(nums.x, size), "y": uint(nums.y, size)}
    if isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", **head, "crv": "Ed25519", "x": b64u(raw)}
    raise TypeError(type(pub))


def write_jwks(priv, hmac_secrets):
    public = [public_jwk(priv[name], kid, alg) for alg, kid, name in ALGS if name in priv]
    write(os.path.join(HERE, "jwks.json"), json.dumps({"keys": public}, indent=2) + "\n")
    octs = [
        {"kty": "oct", "kid": kid, "alg": alg, "use": "sig", "k": b64u(hmac_secrets[name])}
        for alg, kid, name in ALGS if name in hmac_secrets
    ]
    doc = {
        "description": "TEST-ONLY keys for meshguard tests: jwks.json plus the HMAC secrets "
                       "(oct keys). Generated by generate.py; never use outside tests.",
        "keys": octs + public,
    }
    write(os.path.join(HERE, "jwks_with_secrets.json"), json.dumps(doc, indent=2) + "\n")


# ---------------------------------------------------------------- tokens

def claims(name: str, **override) -> dict:
    c = {
        "iss": ISS,
        "sub": "user-123",
        "aud": AUD,
        "iat": 1893455900,
        "nbf": 1893455900,
        "exp": 1893459600,
        "jti": f"jti-{name}",
        "scope": "orders:read orders:write",
        "client_id": "svc-client",
    }
    for k, v in override.items():
        if v is None:
            del c[k]
        else:
            c[k] = v
    return c


def main():
    priv, hmac_secrets = make_keys()
    write_keys(priv)
    write_jwks(priv, hmac_secrets)

    signing_key = {**priv, **hmac_secrets}
    cases = []

    def add(name, alg, kid, token, cl, key, reason=None, **extra):
        case = {
            "name": name, "alg": alg, "kid": kid, "token": token, "claims": cl, "key": key,
            "expected": "invalid" if reason else "valid",
        }
        if reason:
            case["reason"] = reason
        case.update(extra)
        cases.append(case)

    def mint(name, alg, cl, reason=None, kid="default", typ="at+jwt", key=None):
        kid = KID[alg] if kid == "default" else kid
        key = key or KEYNAME[alg]
        headers = {"typ": typ}
        if kid is not None:
            headers["kid"] = kid
        token = jwt.encode(cl, signing_key[key], algorithm=alg, headers=headers)
        add(name, alg, kid, token, cl, key, reason)
        return token

    def mint_raw(name, alg, payload_json: str, reason, kid="default"):
        """Sign a hand-written payload text with PyJWT's JWS layer (no claim handling)."""
        kid = KID[alg] if kid == "default" else kid
        key = KEYNAME[alg]
        token = jwt.api_jws.encode(payload_json.encode(), signing_key[key], algorithm=alg,
                                   headers={"typ": "at+jwt", "kid": kid})
        add(name, alg, kid, token, json.loads(payload_json), key, reason,
            payload_json=payload_json)

    # Valid: one per algorithm, with kid, typ at+jwt.
    for alg, kid, _ in ALGS:
        n = f"{kid}_valid"
        mint(n, alg, claims(n))
    for alg in ("HS256", "RS256"):
        n = f"{KID[alg]}_no_kid"
        mint(n, alg, claims(n), kid=None)
    for alg in ("RS256", "ES256", "HS512"):
        n = f"{KID[alg]}_typ_jwt"
        mint(n, alg, claims(n), typ="JWT")
    for alg in ("RS256", "ES384"):
        n = f"{KID[alg]}_aud_array"
        mint(n, alg, claims(n, aud=AUD_ARRAY))

    # Invalid: per algorithm, expired and flipped signature byte.
    for alg, kid, _ in ALGS:
        n = f"{kid}_expired"
        mint(n, alg, claims(n, exp=1893450000), reason="expired")
    for alg, kid, _ in ALGS:
        n = f"{kid}_bad_signature"
        cl = claims(n)
        good = jwt.encode(cl, signing_key[KEYNAME[alg]], algorithm=alg,
                          headers={"typ": "at+jwt", "kid": kid})
        head, body, sig = good.split(".")
        raw = bytearray(b64u_decode(sig))
        raw[len(raw) // 2] ^= 0x01
        add(n, alg, kid, f"{head}.{body}.{b64u(bytes(raw))}", cl, KEYNAME[alg], "bad_signature")

    # Invalid: claim problems.
    n = "rs256_wrong_iss"
    mint(n, "RS256", claims(n, iss="https://evil.example"), reason="issuer")
    n = "es256_wrong_aud"
    mint(n, "ES256", claims(n, aud="api://billing"), reason="audience")
    n = "hs256_missing_exp"
    mint(n, "HS256", claims(n, exp=None), reason="missing_claim")
    n = "eddsa_nbf_future"
    mint(n, "EdDSA", claims(n, nbf=1893460000, exp=1893463600), reason="not_yet_valid")

    # Invalid: hand-crafted payload text, signed by PyJWT's JWS layer.
    n = "hs256_exp_string"
    cl = claims(n, exp="1893459600")
    mint_raw(n, "HS256", json.dumps(cl, separators=(",", ":")), "malformed")
    n = "hs256_duplicate_sub"
    text = json.dumps(claims(n), separators=(",", ":"))
    text = text[:-1] + ',"sub":"admin"}'  # second "sub" member
    mint_raw(n, "HS256", text, "malformed")

    # Invalid: key selection.
    n = "rs256_unknown_kid"
    mint(n, "RS256", claims(n), kid="nope", reason="unknown_key")
    n = "rs256_wrong_key"  # kid says rs256 (rsa2048) but rsa3072 signed it
    mint(n, "RS256", claims(n), key="rsa3072", reason="bad_signature")

    # Invalid: algorithm problems (beyond the required list; cover disallowed_algorithm).
    n = "none_alg"  # unsecured JWS, empty signature, kid of a real key
    cl = claims(n)
    token = jwt.encode(cl, None, algorithm="none", headers={"typ": "at+jwt", "kid": "rs256"})
    add(n, "none", "rs256", token, cl, None, "disallowed_algorithm")
    n = "hs256_key_confusion_rs256"  # HMAC keyed with the rs256 public PEM text
    cl = claims(n)
    head = b64u(json.dumps({"alg": "HS256", "kid": "rs256", "typ": "at+jwt"},
                           separators=(",", ":")).encode())
    body = b64u(json.dumps(cl, separators=(",", ":")).encode())
    with open(os.path.join(KEYS, "rsa2048.pub.pem"), "rb") as f:
        pem = f.read()
    sig = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    add(n, "HS256", "rs256", f"{head}.{body}.{b64u(sig)}", cl, "rsa2048", "disallowed_algorithm")

    doc = {
        "description": (
            "JWTs minted by PyJWT for meshguard interop tests. Verify every case as if the "
            "current time were `now`, with issuer " + ISS + " and audience " + AUD + ", "
            "against jwks_with_secrets.json (HS*) or jwks.json, selecting the key by kid "
            "(no kid: the key for the header alg). `key` names the key (under keys/) that "
            "actually produced the signature: for rs256_wrong_key it is not the kid's key, "
            "for hs256_key_confusion_rs256 the HMAC secret was the bytes of "
            "keys/rsa2048.pub.pem, for none_alg there is none. `claims` is the payload as "
            "parsed by Python's json (last duplicate wins); hand-written payloads also "
            "carry the exact text in `payload_json`. All keys are TEST-ONLY."
        ),
        "generator": {"pyjwt": jwt.__version__, "cryptography": cryptography.__version__},
        "now": NOW,
        "issuer": ISS,
        "audience": AUD,
        "cases": cases,
    }
    write(os.path.join(HERE, "tokens.json"), json.dumps(doc, indent=2) + "\n")
    print(f"wrote {len(cases)} cases with PyJWT {jwt.__version__}, "
          f"cryptography {cryptography.__version__}")


if __name__ == "__main__":
    main()
