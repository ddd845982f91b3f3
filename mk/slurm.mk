# Slurm: the smoke tests of slurm/*.sbatch on a throw-away one-node Slurm (.ci/slurm-smoke.sh), part of `make test`.
#   make slurm-smoke            only those (installs the Slurm packages, builds; needs root or passwordless sudo)
# The Slurm packages are installed by `make test` / `make slurm-smoke` only, so `make run` stays lean.
SLURM_DEB_PACKAGES := slurmctld slurmd slurm-client munge
TEST_SUITES        += .ci/slurm-smoke.sh

.PHONY: slurm-deps slurm-smoke
# A failed install does not stop `make test`: the smoke suite then reports its jobs as skipped, with the reason,
# on the line before the closing one.
slurm-deps:
	-$(call install-missing,slurm-deps,$(SLURM_DEB_PACKAGES))

test: slurm-deps

slurm-smoke: build slurm-deps
	bash .ci/slurm-smoke.sh $(TEST_RESULTS)
