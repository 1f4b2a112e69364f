"""Validates Kubernetes objects against a CustomResourceDefinition's own openAPIV3Schema, offline.

Usage: python validate_crd.py CRD.yaml MANIFEST.yaml... ; exit 1 naming every violation.
Stricter than the schema alone: like `kubectl apply --validate=strict`, an object field the schema does
not declare (and does not allow with x-kubernetes-preserve-unknown-fields) is an error, not pruned.
"""
import sys

import jsonschema
import yaml


def strict(schema):
    if not isinstance(schema, dict):
        return schema
    out = {key: value for key, value in schema.items()}
    if "properties" in out:
        out["properties"] = {key: strict(value) for key, value in out["properties"].items()}
        if not out.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in out:
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = strict(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [strict(item) for item in out[key]]
    return out


def main():
    with open(sys.argv[1]) as f:
        crd = yaml.safe_load(f)
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    schemas = {f"{group}/{v['name']}": strict(v["schema"]["openAPIV3Schema"]) for v in crd["spec"]["versions"] if v.get("served")}
    failures = 0
    checked = 0
    for path in sys.argv[2:]:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc or doc.get("kind") != kind:
                    continue
                schema = schemas.get(doc.get("apiVersion"))
                if schema is None:
                    print(f"{path}: apiVersion {doc.get('apiVersion')} is not served by the CRD", file=sys.stderr)
                    failures += 1
                    continue
                checked += 1
                for error in jsonschema.Draft7Validator(schema).iter_errors(doc):
                    where = ".".join(str(p) for p in error.absolute_path) or "(root)"
                    print(f"{path}: {where}: {error.message}", file=sys.stderr)
                    failures += 1
    if checked == 0:
        print(f"no {kind} found to validate", file=sys.stderr)
        sys.exit(1)
    print(f"{checked} {kind} object(s) checked, {failures} violation(s)")
    sys.exit(1 if failures else 0)


main()
