#!/usr/bin/env python3
"""Asserts what schema validation cannot see in a rendered overlay (`kubectl kustomize` output).

- No Secret is rendered: the real one is created out of band, and a rendered one would replace
  it (PIN key included) on every apply.
- A Deployment that an HPA scales sets no `replicas`, which would fight the HPA on every apply.
- The Deployment migrates on start (no `--no-migrate`) and no Job runs migrations under a fixed
  name (a new image could not be applied over it).
- Every Service, PodDisruptionBudget and NetworkPolicy selects the Deployment's pods, and no
  other pod template (a Job's, say) carries labels its selector matches.
- Each NetworkPolicy rule for the gRPC and metrics ports names who may connect.
- No ReadWriteOnce claim is mounted by more than one pod template.
- The connection budget holds: (maxReplicas + maxSurge) x (pool + 1 listener) stays within
  PostgreSQL's default max_connections less its reserved ones, the pool being the server's
  default of 2 x cores + 2 (cores from the CPU limit) unless COUPON_POOL_SIZE sets it.

Usage: check_manifests.py RENDERED.yaml...
With --self-test, each assertion is also shown to catch a broken copy of the renders.
"""

import copy
import math
import sys

import yaml

GRPC_PORT, METRICS_PORT = 50051, 9090
# PostgreSQL's default max_connections (100) less superuser_reserved_connections (3).
POSTGRES_CONNECTIONS = 97
PLACEHOLDERS = ("REPLACE", "CHANGE-ME", "CHANGEME", "EXAMPLE")


class ManifestError(Exception):
    pass


def fail(path, message):
    raise ManifestError(f"{path}: {message}")


def selects(selector, labels):
    """Whether a label selector (matchLabels and matchExpressions, or a Service's plain map)
    selects `labels`."""
    if selector is None:
        return False
    if "matchLabels" in selector or "matchExpressions" in selector:
        match, expressions = selector.get("matchLabels", {}), selector.get("matchExpressions", [])
    else:
        match, expressions = selector, []
    if not all(labels.get(k) == v for k, v in match.items()):
        return False
    for expression in expressions:
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def cpu_cores(quantity):
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def default_pool_size(cores):
    """The server's default pool: 2 x cores + 2, at most 32 (src/config.rs), where the cores a
    CPU limit gives are rounded down, at least one, as Rust's available_parallelism counts them."""
    return min(2 * max(1, math.floor(cores)) + 2, 32)


def load(path):
    return [o for o in yaml.safe_load_all(open(path, encoding="utf-8")) if o]


def check(path, objects):
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)

    for secret in by_kind.get("Secret", []):
        values = {**secret.get("stringData", {}), **secret.get("data", {})}
        placeholder = [k for k, v in values.items() if any(p in str(v).upper() for p in PLACEHOLDERS)]
        fail(path, f"renders Secret {secret['metadata']['name']} (placeholders: {placeholder}); "
                   "Secrets are created out of band")

    deployments = by_kind.get("Deployment", [])
    if len(deployments) != 1:
        fail(path, f"expected one Deployment, found {len(deployments)}")
    deployment = deployments[0]
    spec = deployment["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    if not selects(spec["selector"], pod_labels):
        fail(path, "the Deployment's selector does not match its own pods")

    hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", [])
            if h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]]
    if hpas and "replicas" in spec:
        fail(path, "the Deployment sets replicas while an HPA scales it")

    container = spec["template"]["spec"]["containers"][0]
    if "--no-migrate" in container.get("args", []) + container.get("command", []):
        fail(path, "the Deployment starts with --no-migrate: a fresh database would crash-loop")
    if ":" not in container["image"] and "@" not in container["image"]:
        fail(path, f"image {container['image']} has no tag or digest")

    for job in by_kind.get("Job", []) + by_kind.get("CronJob", []):
        fail(path, f"renders {job['kind']} {job['metadata']['name']}: replicas migrate on start")

    other_templates = [o for o in objects if o is not deployment and
                       o["kind"] in ("Job", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod")]
    for other in other_templates:
        labels = (other["spec"].get("template", {}).get("metadata", {}).get("labels")
                  or other["metadata"].get("labels", {}))
        if selects(spec["selector"], labels):
            fail(path, f"{other['kind']} {other['metadata']['name']} matches the Deployment's selector")

    for service in by_kind.get("Service", []):
        if not selects(service["spec"].get("selector"), pod_labels):
            fail(path, f"Service {service['metadata']['name']} does not select the pods")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        if not selects(pdb["spec"]["selector"], pod_labels):
            fail(path, f"PodDisruptionBudget {pdb['metadata']['name']} does not select the pods")

    policies = by_kind.get("NetworkPolicy", [])
    if not policies:
        fail(path, "no NetworkPolicy")
    for policy in policies:
        if not selects(policy["spec"]["podSelector"], pod_labels):
            fail(path, f"NetworkPolicy {policy['metadata']['name']} does not select the pods")
        for port in (GRPC_PORT, METRICS_PORT):
            rules = [r for r in policy["spec"].get("ingress", [])
                     if any(p.get("port") == port for p in r.get("ports", []))]
            if not rules or not all(r.get("from") for r in rules):
                fail(path, f"NetworkPolicy admits port {port} from anyone (a rule without `from`)")

    claims = {c["metadata"]["name"]: c for c in by_kind.get("PersistentVolumeClaim", [])}
    mounted = {}
    for obj in objects:
        template = obj.get("spec", {}).get("template", {}).get("spec", {})
        for volume in template.get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim:
                mounted.setdefault(claim, []).append(f"{obj['kind']}/{obj['metadata']['name']}")
    for claim, users in mounted.items():
        modes = claims.get(claim, {}).get("spec", {}).get("accessModes", [])
        if "ReadWriteOnce" in modes and len(users) > 1:
            fail(path, f"ReadWriteOnce claim {claim} is mounted by {users}")

    env = {e["name"]: e for e in container.get("env", [])}
    if "DATABASE_URL" in env and "valueFrom" in env["DATABASE_URL"] and hpas:
        config = {}
        for config_map in by_kind.get("ConfigMap", []):
            config.update(config_map.get("data", {}))
        limit = container.get("resources", {}).get("limits", {}).get("cpu")
        if limit is None:
            fail(path, "no CPU limit: the default pool size would follow the node's cores")
        pool = int(config.get("COUPON_POOL_SIZE", default_pool_size(cpu_cores(limit))))
        surge = spec.get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", 1)
        if isinstance(surge, str):
            fail(path, "maxSurge as a percentage makes the connection budget unbounded")
        pods = max(h["spec"]["maxReplicas"] for h in hpas) + surge
        budget = pods * (pool + 1)
        if budget > POSTGRES_CONNECTIONS:
            fail(path, f"{pods} pods x ({pool} pooled + 1 listener) = {budget} connections, "
                       f"over PostgreSQL's {POSTGRES_CONNECTIONS}")
        return f"connection budget {pods} x ({pool} + 1) = {budget} <= {POSTGRES_CONNECTIONS}"
    return "no PostgreSQL connection budget to check"


def deployment_of(objects):
    return next(o for o in objects if o["kind"] == "Deployment")


def container_of(objects):
    return deployment_of(objects)["spec"]["template"]["spec"]["containers"][0]


def add_placeholder_secret(objects):
    objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "coupon-service"},
                    "stringData": {"COUPON_PIN_KEY": "REPLACE-WITH-BASE64"}})


def add_migration_job(objects):
    template = copy.deepcopy(deployment_of(objects)["spec"]["template"])
    objects.append({"apiVersion": "batch/v1", "kind": "Job",
                    "metadata": {"name": "coupon-service-migrate"}, "spec": {"template": template}})


def open_network_policy(objects):
    policy = next(o for o in objects if o["kind"] == "NetworkPolicy")
    policy["spec"]["ingress"] = [{"ports": [{"port": GRPC_PORT}, {"port": METRICS_PORT}]}]


def add_lookalike_workload(objects):
    labels = copy.deepcopy(deployment_of(objects)["spec"]["template"]["metadata"]["labels"])
    objects.append({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "other"},
                    "spec": {"template": {"metadata": {"labels": labels},
                                          "spec": {"containers": []}}}})


def share_claim(objects):
    claimed = next(v for v in deployment_of(objects)["spec"]["template"]["spec"]["volumes"]
                   if "persistentVolumeClaim" in v)
    template = {"metadata": {"labels": {"job": "other"}},
                "spec": {"containers": [], "volumes": [claimed]}}
    objects.append({"apiVersion": "apps/v1", "kind": "StatefulSet",
                    "metadata": {"name": "other"}, "spec": {"template": template}})


def overspend_connections(objects):
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    config["data"]["COUPON_POOL_SIZE"] = "16"


MUTATIONS = {
    "a placeholder Secret": ("dev", add_placeholder_secret),
    "replicas beside the HPA": ("prod", lambda o: deployment_of(o)["spec"].update(replicas=3)),
    "--no-migrate": ("prod", lambda o: container_of(o).update(args=["serve", "--no-migrate"])),
    "a migration Job with the pods' labels": ("prod", add_migration_job),
    "another workload with the pods' labels": ("prod", add_lookalike_workload),
    "a Service selecting nothing": ("prod", lambda o: next(
        s for s in o if s["kind"] == "Service")["spec"].update(selector={"app": "other"})),
    "a NetworkPolicy rule open to all": ("prod", open_network_policy),
    "a ReadWriteOnce claim on two templates": ("dev", share_claim),
    "a pool over the connection budget": ("prod", overspend_connections),
}


def self_test(paths):
    renders = {("dev" if "dev" in p else "prod"): load(p) for p in paths}
    for name, (overlay, mutate) in MUTATIONS.items():
        objects = copy.deepcopy(renders[overlay])
        mutate(objects)
        try:
            check(f"{overlay} with {name}", objects)
        except ManifestError as error:
            print(f"self-test: caught {error}")
            continue
        sys.exit(f"self-test: {overlay} with {name} passed the assertions")


def main():
    args = [a for a in sys.argv[1:] if a != "--self-test"]
    if not args:
        sys.exit(__doc__)
    try:
        for path in args:
            note = check(path, load(path))
            print(f"{path}: assertions hold ({note})")
    except ManifestError as error:
        sys.exit(str(error))
    if "--self-test" in sys.argv:
        self_test(args)


if __name__ == "__main__":
    main()
