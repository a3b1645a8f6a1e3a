"""``python -m local.env_json``: writes env.json, the ``--env-vars`` file for ``sam local invoke/start-api``.

Generated from template.yaml, so every function has an entry and the names match what ``make run`` creates in moto.
SAM only overrides variables the template declares for the function, so only those are written.
"""

from __future__ import annotations

import json
from typing import Any

from local.config import LocalConfig
from local.template import ROOT, Resolver, functions, load_template

ENV_JSON = ROOT / "env.json"
# Inside sam's containers the developer's machine (moto, the simulator) is host.docker.internal.
DOCKER_HOST = "host.docker.internal"
# events/*.json are signed once, at a fixed time, for this URL: a wide tolerance lets them verify later.
EVENTS_TOLERANCE_SECONDS = str(20 * 365 * 24 * 3600)


def generate(config: LocalConfig | None = None) -> dict[str, dict[str, Any]]:
    config = config or LocalConfig()
    template = load_template()
    resolver = Resolver(template, stack_name=config.stack_name, parameter_overrides=config.parameter_overrides)
    local = {
        "AWS_ENDPOINT_URL": f"http://{DOCKER_HOST}:{config.aws_port}",
        "MELD_API_BASE_URL": f"http://{DOCKER_HOST}:{config.meld_port}",
        "MELD_WEBHOOK_URL": config.signed_webhook_url,
        "MELD_WEBHOOK_TOLERANCE_SECONDS": EVENTS_TOLERANCE_SECONDS,
    }
    return {
        spec.name: {name: local.get(name, value) for name, value in sorted(spec.environment.items())}
        for spec in sorted(functions(template, resolver), key=lambda spec: spec.name)
    }


def main() -> None:
    ENV_JSON.write_text(json.dumps(generate(), indent=2) + "\n")
    print(f"wrote {ENV_JSON.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
