#!/usr/bin/env python3
"""Usage: dependency-msrv.py [VERSION]

Fails when a crate that users compile (the normal and build dependency graph of the workspace's
packages, all features on) declares a higher `rust-version` than the workspace's own.

Reads `cargo metadata`; dev-dependencies are left out, since only this repository builds them.
"""
import json
import subprocess
import sys


def version_tuple(text):
    return tuple(int(part) for part in text.split("."))


def main():
    host = next(
        line.split(": ", 1)[1]
        for line in subprocess.check_output(["rustc", "-vV"], text=True).splitlines()
        if line.startswith("host: ")
    )
    metadata = json.loads(
        subprocess.check_output(
            ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked",
             "--filter-platform", host]
        )
    )
    packages = {package["id"]: package for package in metadata["packages"]}
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    members = metadata["workspace_members"]
    ours = {packages[id]["rust_version"] for id in members}
    if len(ours) != 1 or None in ours:
        sys.exit(f"workspace packages declare differing rust-versions: {sorted(map(str, ours))}")
    msrv = ours.pop()
    if len(sys.argv) > 1:  # `dependency-msrv.py 1.70`: try the check against another version
        msrv = sys.argv[1]

    seen, stack, too_new = set(members), list(members), []
    while stack:
        node = nodes[stack.pop()]
        for dep in node["deps"]:
            kinds = {kind["kind"] for kind in dep["dep_kinds"]}
            if kinds <= {"dev"} or dep["pkg"] in seen:
                continue
            seen.add(dep["pkg"])
            stack.append(dep["pkg"])
            package = packages[dep["pkg"]]
            needed = package.get("rust_version")
            if needed and version_tuple(needed) > version_tuple(msrv):
                too_new.append(f"{package['name']} {package['version']} needs Rust {needed}")

    checked = len(seen) - len(members)
    if too_new:
        print(f"rust-version is {msrv}, but dependencies users compile need more:")
        print("\n".join(sorted(too_new)))
        print("pin an older version (cargo update -p NAME --precise VERSION) or raise rust-version")
        sys.exit(1)
    print(f"{checked} normal and build dependencies all build with Rust {msrv} (rust-version)")


if __name__ == "__main__":
    main()
