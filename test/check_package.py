#!/usr/bin/env python3
"""Package checks: META.json is valid PGXN metadata (spec 1.0.0) and agrees
with the control file, the Makefile and the versioned install script; the
Debian packaging (debian/) agrees with them, and debian/control is what
`pg_buildext updatecontrol` makes of debian/control.in."""
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


# debian/: the upstream part of the Debian version is META.json's version
changelog = read("debian/changelog")
head = re.match(r"^(\S+) \(([^)\s]+)\) [^;]+; urgency=\S+\n", changelog)
if not head:
    errors.append("debian/changelog: the first line is not 'source (version) distribution; urgency=...'")
else:
    source, debversion = head.groups()
    upstream = re.sub(r"-[^-]+$", "", re.sub(r"^\d+:", "", debversion))
    if upstream != version:
        errors.append(f"debian/changelog version {debversion!r}: upstream {upstream!r}, META.json says {version!r}")


def paragraphs(text):
    """The paragraphs of a deb822 file, as pg_buildext's Perl reads them."""
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text) if p.strip("\n")]


def pgversions_allow(lines, major):
    """Whether debian/pgversions (all, N, N+, # comments) includes major."""
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line == "all" or line == str(major):
            return True
        if re.fullmatch(r"\d+\+", line) and major >= int(line[:-1]):
            return True
        if not re.fullmatch(r"all|\d+\+?", line):
            errors.append(f"debian/pgversions: syntax error in {line!r}")
    return False


# debian/control: pg_buildext gencontrol's rule on control.in, for the majors
# debian/control lists (the supported ones where it was made: 15 on Debian 12)
control_in = paragraphs(read("debian/control.in"))
templates = [p for p in control_in if re.match(r"Package: .*PGVERSION", p)]
if len(templates) != 1 or not templates[0].startswith("Package: postgresql-PGVERSION-event-store\n"):
    errors.append("debian/control.in: needs exactly one 'Package: postgresql-PGVERSION-event-store'")
else:
    if head and not re.search(rf"^Source: {re.escape(head.group(1))}$", control_in[0], re.M):
        errors.append(f"debian/control.in: Source is not {head.group(1)!r} (debian/changelog)")
    control_deb = read("debian/control")
    majors = [int(m) for m in re.findall(r"^Package: postgresql-(\d+)-event-store$", control_deb, re.M)]
    pgversions = read("debian/pgversions").splitlines()
    if not majors:
        errors.append("debian/control lists no postgresql-MAJOR-event-store package")
    for major in majors:
        if not pgversions_allow(pgversions, major):
            errors.append(f"debian/control has PostgreSQL {major}, debian/pgversions does not")
    if majors:
        generated = []
        for p in control_in:
            if re.match(r"Package: .*PGVERSION", p):
                generated += [p.replace("PGVERSION", str(m)) for m in majors]
            else:
                generated.append(p.replace("PGVERSION", str(majors[-1])))
        if "\n\n".join(generated) + "\n" != control_deb:
            errors.append("debian/control is not what 'pg_buildext updatecontrol' makes of debian/control.in: run it")

for e in errors:
    print("not ok:", e)
print("ok: package metadata" if not errors else f"{len(errors)} package problem(s)")
sys.exit(1 if errors else 0)
