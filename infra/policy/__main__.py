"""Entry point of the policy pack: Pulumi runs this directory with run_name "__main__".

Constructing the PolicyPack starts the analyzer's gRPC server and blocks, so the rules live in
numbas_policies.py (plain functions, tested in tests/infra/test_policy.py) and only this file
touches the engine.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from numbas_policies import PACK_NAME, build_policies

if __name__ == "__main__":
    PolicyPack(
        name=PACK_NAME,
        enforcement_level=EnforcementLevel.MANDATORY,
        policies=build_policies(),
    )
