#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora and scenario from the test cases.

    tools/fuzz_seeds.py        (from the workspace root; needs flatc for the frames)

Seeds come from tests/cases/domain_cases.json (the DOMAIN.md cases) and the built-in
policy packs, so the fuzzers start from inputs that reach deep into each parser. The
files are kept in the tree (fuzz/corpus/...); re-run this after the cases change.
Inputs the fuzzers find later are added next to them by `./run fuzz`.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")

def vocab(name):
    """The names of a vocabulary enum in declaration order, from model/vocabulary.h."""
    import re
    text = open(os.path.join(ROOT, "model", "vocabulary.h")).read()
    m = re.search(r"#define TOEGANG_" + name + r"\(X\)(.*?)\n(?!\s*X\()", text, re.S)
    if not m:
        sys.exit(f"fuzz_seeds: no TOEGANG_{name} table in model/vocabulary.h")
    return re.findall(r'X\(\w+,\s*"([a-z0-9_]+)"', m.group(1))


def write(sub, name, data):
    d = os.path.join(CORPUS, sub)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    cases = json.load(open(os.path.join(ROOT, "tests", "cases", "domain_cases.json")))

    # The scenario every fuzzer decides against: every fact set and case fact, each id once.
    seen, scenario = set(), []
    facts = [f for v in cases["fact_sets"].values() for f in v]
    facts += [f for c in cases["cases"] for f in c["facts"]]
    for f in facts:
        key = f.get("id") or json.dumps(f, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        scenario.append({k: v for k, v in f.items() if v is not None})
    with open(os.path.join(ROOT, "fuzz", "scenario.jsonl"), "w") as out:
        for f in scenario:
            out.write(json.dumps(f, separators=(",", ":")) + "\n")

    for i, f in enumerate(scenario):
        write("fact_jsonl", f"fact-{i:03d}.jsonl", json.dumps(f))

    roles = vocab("ROLES")
    actions = vocab("ACTIONS")
    categories = vocab("CATEGORIES")
    purposes = vocab("PURPOSES")
    kinds = {"actor": 0, "role": 1, "organization": 2}

    batch = []
    for c in cases["cases"]:
        req = c["request"]
        name = c["name"]
        write("request_json", name + ".json", json.dumps(req))
        batch.append(req)
        # The same request as an HTTP request and as a frame.
        body = json.dumps(req)
        write("http_request", "decide-" + name + ".http",
              f"POST /v1/decisions HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{body}")
        actor = req["actor"]
        frame = {
            "id": len(batch),
            "decide": {
                "at_us": 0,
                "actor_id": actor["id"],
                "actor_role": roles.index(actor["role"]),
                "patient": req["patient"],
                "action": actions.index(req["action"]),
                "category": categories.index(req["category"]),
                "purpose": purposes.index(req["purpose"]),
                "emergency": "emergency" in req,
            },
        }
        if "organization" in actor:
            frame["decide"]["actor_organization"] = actor["organization"]
        if "emergency" in req:  # {"justification": TEXT}
            frame["decide"]["justification"] = req["emergency"].get("justification", "")
        if req.get("legal_order"):
            frame["decide"]["legal_order"] = req["legal_order"]
        if "recipient" in req:
            r = req["recipient"]
            (kind, value), = r.items()  # {"actor": ID}, {"role": NAME} or {"organization": ID}
            p = {"kind": kinds[kind]}
            if kind == "role":
                p["role"] = roles.index(value)
            else:
                p["id"] = value
            frame["decide"]["recipient"] = p
        # at_us from the instant, via the same parse the tests use.
        from datetime import datetime
        at = datetime.fromisoformat(req["at"].replace("Z", "+00:00"))
        frame["decide"]["at_us"] = int(at.timestamp()) * 1000000
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, name + ".json")
            json.dump(frame, open(src, "w"))
            subprocess.run(["flatc", "-b", "-o", tmp, os.path.join(ROOT, "schemas", "wire.fbs"), src], check=True)
            write("wire_frame", name + ".bin", open(os.path.join(tmp, name + ".bin"), "rb").read())

    write("request_json", "batch.json", json.dumps({"requests": batch[:5]}))
    write("http_request", "batch.http", "POST /v1/decisions HTTP/1.1\r\n\r\n" + json.dumps({"requests": batch[:5]}))
    lines = "\n".join(json.dumps(f) for f in scenario[:6])
    write("http_request", "facts.http", "POST /v1/facts HTTP/1.1\r\nContent-Type: application/x-ndjson\r\n\r\n" + lines)
    new_facts = ('{"type":"person","id":"pat-fz","birth_date":"2012-02-29"}\n'
                 '{"type":"consent","id":"con-fz","patient":"pat-fz","granted_by":"pat-fz",'
                 '"to":{"role":"researcher"},"purposes":["research"],"categories":["medical"],'
                 '"actions":["read"],"from":"2026-01-01T00:00:00+01:00"}\n'
                 '{"type":"withdrawal","target":"con-fz","at":"2026-02-01T00:00:00+01:00"}')
    write("http_request", "facts-new.http", "POST /v1/facts HTTP/1.1\r\n\r\n" + new_facts)
    for get in ["/healthz", "/metrics", "/v1/patients/pat-1/history",
                "/v1/patients/pat-1/history?as_of=2026-03-01T00:00:00%2B01:00",
                "/v1/patients/pat-1/access-log",
                "/v1/patients/pat-1/access-log?from=2026-01-01T00:00:00Z&until=2027-01-01T00:00:00Z",
                "/v1/nothing"]:
        write("http_request", "get-" + hashlib.sha1(get.encode()).hexdigest()[:10] + ".http",
              f"GET {get} HTTP/1.1\r\n\r\n")
    write("http_request", "reload.http", "POST /v1/policy/reload HTTP/1.1\r\n\r\n")

    for pack in os.listdir(os.path.join(ROOT, "policy", "packs")):
        write("policy_pack", pack, open(os.path.join(ROOT, "policy", "packs", pack)).read())
    for name, text in cases["variants"].items():
        write("policy_pack", "variant-" + name.lstrip("@") + ".policy",
              f"policy fuzz-{name.lstrip('@').replace('_', '-')}\nversion 1\nextends wgbo-default\n\n{text}\n")
    print(f"fuzz_seeds: {len(scenario)} scenario facts, {len(cases['cases'])} requests and frames")


if __name__ == "__main__":
    main()
