#!/usr/bin/env python3
"""Adds seed inputs built from tests/data to fuzz/corpus/<target>/ (see fuzz/corpus/README.md).

Run from anywhere: `python3 fuzz/make-corpus.py`. Files already in the corpus (hand-written
seeds and `regression-*` inputs) stay; a generated input whose bytes some file already holds
is skipped, so running it twice adds nothing.
"""
import base64
import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CORPUS = ROOT / "fuzz" / "corpus"
# Bytes of one seed at most: larger inputs slow every mutation and the limit is per file.
MAX_SEED = 16 * 1024


def load(path):
    return json.loads((DATA / path).read_text())


def add(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_SEED:
        return
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    seen = {p.read_bytes() for p in folder.iterdir() if p.is_file()}
    if data in seen:
        return
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:60] or "seed"
    safe += "-" + hashlib.sha1(data).hexdigest()[:8]
    (folder / safe).write_bytes(data)


def pem_blocks(text):
    return re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)


def tokens():
    for case in load("pyjwt/tokens.json")["cases"]:
        yield "pyjwt-" + case["name"], case["token"]
    for case in load("jose/jose_rfc_vectors.json")["cases"]:
        if case.get("compact"):
            yield "jose-" + case["id"], case["compact"]


def main():
    for name, token in tokens():
        add("token_verify", name, token)
    for name, token in list(tokens())[::8]:
        add("bearer_header", name, f"Bearer {token}\0at={token}\0access_token={token}")

    jwks = sorted((DATA / "real_jwks").glob("*.json"))
    for path in jwks:
        body = path.read_bytes()
        target = "jwks_discovery" if "openid-configuration" in path.name else "jwks_remote_document"
        add(target, path.stem, body)
        add("key_documents", path.stem, body)
        if path.name.startswith("spiffe-bundle"):
            add("spiffe_bundle", path.stem, body)
    for path in ["pyjwt/jwks.json", "pyjwt/jwks_with_secrets.json"]:
        add("jwks_remote_document", path, (DATA / path).read_bytes())
        add("key_documents", path, (DATA / path).read_bytes())
    jose_keys = load("jose/jose_rfc_vectors.json")["keys"]
    for name, key in jose_keys.items():
        add("key_documents", "jose-" + name, json.dumps(key))
    add("jwks_remote_document", "jose-keys", json.dumps({"keys": list(jose_keys.values())}))
    for path in sorted((DATA / "pyjwt" / "keys").glob("*.pem")):
        if not path.name.startswith("TEST-ONLY-"):
            add("key_documents", path.name, path.read_bytes())

    for case in load("xfcc/xfcc.json")["cases"]:
        add("peer_xfcc", case["id"], case["header"])

    # Hundreds of go-spiffe cases differ by one character each; a dozen per class seed as well.
    spiffe = load("spiffe/spiffe.json")
    per_class = {}
    for index, case in enumerate(spiffe["spiffe_id_cases"] + spiffe["trust_domain_cases"]):
        kind = case.get("error_class") or case["expected"]
        per_class[kind] = per_class.get(kind, 0) + 1
        if per_class[kind] <= 12:
            add("peer_spiffe_id", f"go-spiffe-{kind}-{index}", case["input"])

    certs = sorted((DATA / "spiffe" / "x509").glob("*.pem")) + sorted((DATA / "pyjwt" / "keys").glob("*.cert.pem"))
    for path in certs:
        text = path.read_text()
        add("peer_identity_der", "pem-" + path.stem, b"\x01" + text.encode())
        for index, block in enumerate(pem_blocks(text)):
            try:
                der = base64.b64decode("".join(block.split()))
            except ValueError:
                continue
            add("peer_identity_der", f"der-{path.stem}-{index}", b"\x00" + der)

    cedar = load("cedar/cedar.json")
    for case in cedar["corpus_sample"]:
        entities = json.dumps(case["entities"])
        add("policy_load", case["id"], f"{case['policies']}\0{case['schema']}\0{entities}\0\0{{}}")
    for case in cedar["tests"][::4]:
        schema = cedar["schemas"].get(case.get("schema_ref"), "")
        entities = json.dumps(cedar["entity_sets"].get(case.get("entities_ref"), []))
        add("policy_load", case["id"], f"{case['policies']}\0{schema}\0{entities}\0\0{{}}")


if __name__ == "__main__":
    main()
