#!/usr/bin/env python3
"""Package checks: META.json is valid PGXN metadata (spec 1.0.0) and agrees
with the control file, the Makefile and the versioned install script."""
import json
import os
import re
import sys

top = sys.argv[1] if len(sys.argv) > 1 else "."
errors = []


def read(path):
    with open(os.path.join(top, path), encoding="utf-8") as f:
        return f.read()


meta = json.loads(read("META.json"))
for key in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"):
    if key not in meta:
        errors.append(f"META.json lacks the required key {key!r}")
semver = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z]+)?$")
version = meta.get("version", "")
if not semver.match(version):
    errors.append(f"META.json version {version!r} is not a semantic version")
if meta.get("meta-spec", {}).get("version") != "1.0.0":
    errors.append("META.json meta-spec version must be 1.0.0")
if meta.get("release_status", "stable") not in ("stable", "testing", "unstable"):
    errors.append("META.json release_status is invalid")
licenses = {"postgresql", "mit", "bsd", "apache_2_0", "gpl_3", "restricted", "open_source", "unknown"}
if isinstance(meta.get("license"), str) and meta["license"] not in licenses:
    errors.append(f"META.json license {meta['license']!r} is not a PGXN license name")

control = dict(re.findall(r"^(\w+)\s*=\s*'?([^'\n]*)'?", read("event_store.control"), re.M))
makefile = read("Makefile")
extversion = re.search(r"^EXTVERSION\s*=\s*(\S+)", makefile, re.M).group(1)
provided = meta.get("provides", {}).get("event_store", {})
for what, value in (("control default_version", control.get("default_version")),
                    ("Makefile EXTVERSION", extversion),
                    ("provides.event_store.version", provided.get("version"))):
    if value != version:
        errors.append(f"{what} is {value!r}, META.json says {version!r}")

script = provided.get("file", "")
if not os.path.exists(os.path.join(top, script)):
    errors.append(f"provides.event_store.file {script!r} does not exist")
elif not re.search(r"^\\echo .*\\quit", read(script), re.M):
    errors.append(f"{script} lacks the \\echo ... \\quit guard")
if script != f"event_store--{version}.sql":
    errors.append(f"install script {script!r} does not match the version")

for e in errors:
    print("not ok:", e)
print("ok: package metadata" if not errors else f"{len(errors)} package problem(s)")
sys.exit(1 if errors else 0)
