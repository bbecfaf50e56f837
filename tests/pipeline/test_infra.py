"""infra/: the cluster definitions parse and carry what their launchers need; the image builds gsplat's CUDA code."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"


def test_ray_cluster_yaml_is_a_valid_launcher_config():
    doc = yaml.safe_load((INFRA / "ray-cluster-aws.yaml").read_text())
    jsonschema = pytest.importorskip("jsonschema")
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(doc, schema)  # the schema `ray up` checks against
    assert doc["provider"]["type"] == "aws" and doc["head_node_type"] in doc["available_node_types"]
    assert doc["docker"]["image"]
    for name, node in doc["available_node_types"].items():
        # S3 by instance role: every node has an instance profile, and no key appears anywhere in the file
        assert "IamInstanceProfile" in node["node_config"], name
    text = (INFRA / "ray-cluster-aws.yaml").read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key|AWS_SECRET_ACCESS_KEY", text)
    assert any("ray start --head" in c for c in doc["head_start_ray_commands"])
    assert any("ray start --address" in c for c in doc["worker_start_ray_commands"])


def test_kuberay_rayjob_manifest():
    docs = list(yaml.safe_load_all((INFRA / "rayjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "RayJob")
    assert job["apiVersion"].startswith("ray.io/")
    spec = job["spec"]
    assert spec["entrypoint"].split()[:2] == ["smartsplat", "compress"] and "--address auto" in spec["entrypoint"]
    cluster = spec["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert head["containers"][0]["image"]
    gpu_group = cluster["workerGroupSpecs"][0]
    limits = gpu_group["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert str(limits["nvidia.com/gpu"]) == "1"
    sa = next(d for d in docs if d["kind"] == "ServiceAccount")
    assert head["serviceAccountName"] == sa["metadata"]["name"] == gpu_group["template"]["spec"]["serviceAccountName"]
    assert "role-arn" in json.dumps(sa["metadata"].get("annotations", {}))  # IAM role, not keys
    assert "AWS_SECRET_ACCESS_KEY" not in (INFRA / "rayjob.yaml").read_text()


def test_dockerfile_builds_gsplat_cuda_extension_at_build_time():
    text = (INFRA / "Dockerfile").read_text()
    assert re.search(r"^FROM\s+\S*(cuda|CUDA)", text, re.M) or re.search(r"ARG CUDA_IMAGE=nvidia/cuda:\S+devel", text)
    assert "TORCH_CUDA_ARCH_LIST" in text
    assert re.search(r"pip install .*--index-url \S*(whl/cu|\$\{TORCH_INDEX\})", text)
    run_lines = " ".join(re.findall(r"^RUN (.+?)(?<!\\)$", text.replace("\\\n", " "), re.M | re.S))
    assert "gsplat" in run_lines and "gsplat.csrc" in run_lines  # built and imported during the build


def test_readme_says_how_to_launch_each():
    text = (INFRA / "README.md").read_text()
    for needle in ("ray up", "kubectl apply", "docker build", "ray-cluster-aws.yaml", "rayjob.yaml"):
        assert needle in text


def test_recipes_agree_and_the_example_command_parses():
    """The container installs the tested versions; its Ray is the RayJob's; the cluster YAML's example command
    parses with the pipeline's own parser and joins the cluster (--address auto)."""
    import shlex
    import sys

    constraints = dict(line.split("==") for line in (INFRA / "constraints.txt").read_text().splitlines()
                       if "==" in line and not line.startswith("#"))
    job = next(d for d in yaml.safe_load_all((INFRA / "rayjob.yaml").read_text()) if d["kind"] == "RayJob")
    assert job["spec"]["rayClusterSpec"]["rayVersion"] == constraints["ray"]
    assert tuple(int(x) for x in constraints["gsplat"].split(".")[:2]) >= (1, 5)
    assert "-c infra/constraints.txt" in (INFRA / "Dockerfile").read_text()
    line = next(l for l in (INFRA / "ray-cluster-aws.yaml").read_text().splitlines() if "ray submit" in l)
    argv = shlex.split(line.lstrip("# "))
    script = argv[3]
    assert script == "pipelines/div16k.py"
    sys.path.insert(0, str(INFRA.parent / "pipelines"))
    try:
        from _runs import sweep_parser
    finally:
        sys.path.pop(0)
    assert argv[4] == "--"  # ray submit passes what follows "--" to the script
    args = sweep_parser("div16k", [100.0], 10, "x").parse_args(argv[5:])
    assert args.src.startswith("s3://") and args.dst.startswith("s3://") and args.cr == [100.0]
    assert args.address == "auto"
