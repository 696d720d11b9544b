"""Helper of tests/deploy_kubernetes.rs: the checks that need Python packages
(tests/deploy/kubernetes/requirements.txt). The Rust test makes every decision; this
script only reports, as JSON on standard output.

  check.py validate K8S_VERSION FILE...  one JSON line per YAML document of each file:
      Kubernetes kinds through kubernetes-validate (strict: unknown fields are errors),
      monitoring.coreos.com kinds through the Prometheus Operator models of
      cloudcoil.models.prometheus_operator (strict types and patterns, and a field the
      schema does not have is an error)
  check.py yaml FILE                      the documents of FILE as PyYAML (YAML 1.1) reads them
  check.py jsonnet ROOT SNIPPET           SNIPPET evaluated by jsonnet with ROOT as import path

Exit status 3 with a message on standard error when a package is missing.
"""

import json
import sys

MISSING = 3


def need(module, package):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        sys.stderr.write(
            f"the Python package {package} is not installed ({e}): "
            "pip install -r tests/deploy/kubernetes/requirements.txt\n"
        )
        sys.exit(MISSING)


def load_all(path):
    yaml = need("yaml", "PyYAML")
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def unknown_fields(given, kept, path):
    """Paths present in `given` that the model dropped from `kept` (fields the schema lacks)."""
    found = []
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            if key not in kept:
                found.append(f"{path}.{key}")
            else:
                found.extend(unknown_fields(value, kept[key], f"{path}.{key}"))
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (a, b) in enumerate(zip(given, kept)):
            found.extend(unknown_fields(a, b, f"{path}[{i}]"))
    return found


def validate_operator_kind(doc):
    models = need("cloudcoil.models.prometheus_operator.v1", "cloudcoil.models.prometheus_operator")
    pydantic = need("pydantic", "pydantic")
    if doc.get("apiVersion") != "monitoring.coreos.com/v1":
        return "error", f"apiVersion {doc.get('apiVersion')!r} is not monitoring.coreos.com/v1"
    model = getattr(models, str(doc.get("kind")), None)
    if model is None or not isinstance(model, type) or not issubclass(model, pydantic.BaseModel):
        return "error", f"no Prometheus Operator kind {doc.get('kind')!r} in monitoring.coreos.com/v1"
    try:
        parsed = model.model_validate(doc, strict=True)
    except pydantic.ValidationError as e:
        return "error", str(e)
    kept = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    unknown = unknown_fields(doc, kept, "")
    if unknown:
        return "error", "fields unknown to the CRD schema: " + ", ".join(p.lstrip(".") for p in unknown)
    if kept != doc:
        return "error", "the CRD model changed the document (a value of the wrong type?)"
    return "ok", ""


def validate(version, paths):
    kv = need("kubernetes_validate", "kubernetes-validate")
    from kubernetes_validate import utils

    for path in paths:
        for index, doc in enumerate(load_all(path)):
            kind = doc.get("kind") if isinstance(doc, dict) else None
            name = (doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None
            api_version = str(doc.get("apiVersion", "")) if isinstance(doc, dict) else ""
            if api_version.startswith("monitoring.coreos.com/"):
                validator = "cloudcoil.models.prometheus_operator " + version_of(
                    "cloudcoil.models.prometheus_operator"
                )
                result, message = validate_operator_kind(doc)
            else:
                validator = f"kubernetes-validate {kv.__version__} (Kubernetes {version}, strict)"
                try:
                    checked = utils.validate(doc, version, strict=True)
                    result, message = "ok", f"against {checked}"
                except utils.ValidationError as e:
                    where = ".".join(str(p) for p in e.path)
                    result, message = "error", f"{where}: {e.message}"
                except (utils.SchemaNotFoundError, utils.InvalidSchemaError, utils.VersionNotSupportedError) as e:
                    result, message = "error", e.message
            print(
                json.dumps(
                    {
                        "file": path,
                        "document": index,
                        "kind": kind,
                        "name": name,
                        "validator": validator,
                        "result": result,
                        "message": message,
                    }
                )
            )


def version_of(distribution):
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


def main(argv):
    if len(argv) >= 3 and argv[1] == "validate":
        validate(argv[2], argv[3:])
    elif len(argv) == 3 and argv[1] == "yaml":
        print(json.dumps(load_all(argv[2])))
    elif len(argv) == 4 and argv[1] == "jsonnet":
        jsonnet = need("_jsonnet", "jsonnet")
        print(jsonnet.evaluate_snippet("snippet", argv[3], jpathdir=[argv[2]]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
