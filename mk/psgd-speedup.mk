# `make psgd-speedup`: PSGD's linear speedup in iterations (issue 19 item 7; the lecture's O(1/(n eps^2))). For each
# worker count n and seed, one `mpipipe train --algo psgd` job (MPICH; n beyond the cores is oversubscribed, which
# changes wall time but not the iterations) with a fixed batch per worker, momentum 0, learning rate n x LR (for a
# fixed target the bound's noise term needs eta proportional to the batch n b: see the README's PSGD section) and the
# model's loss on the whole training subset every EVERY / n steps; then `mpipipe speedup` finds the first evaluation at
# or below TARGET per run -> bench/results/psgd-speedup.md, psgd-speedup.svg, psgd-speedup-loss.svg. Each job's JSON
# and log in build/psgd-speedup. 12 jobs: 27 minutes on 2 cores shared with other work (load 60-80), far less on a quiet machine.
PSGD_SPEEDUP_RANKS  ?= 1 2 4 8
PSGD_SPEEDUP_SEEDS  ?= 1 2 3
PSGD_SPEEDUP_BATCH  ?= 16
PSGD_SPEEDUP_LR     ?= 0.01
PSGD_SPEEDUP_STEPS  ?= 2000
PSGD_SPEEDUP_EVERY  ?= 40
PSGD_SPEEDUP_TARGET ?= 0.5
PSGD_SPEEDUP_ARGS   ?= --model mlp --train-samples 8192 --test-samples 1000 --momentum 0 --threads 1
PSGD_SPEEDUP_WORK   := build/psgd-speedup

.PHONY: psgd-speedup psgd-speedup-runs
psgd-speedup: psgd-speedup-runs
	$(MPIPIPE) speedup --target $(PSGD_SPEEDUP_TARGET) --out bench/results \
	    --command-line "make psgd-speedup PSGD_SPEEDUP_RANKS='$(PSGD_SPEEDUP_RANKS)' PSGD_SPEEDUP_SEEDS='$(PSGD_SPEEDUP_SEEDS)' PSGD_SPEEDUP_BATCH=$(PSGD_SPEEDUP_BATCH) PSGD_SPEEDUP_LR=$(PSGD_SPEEDUP_LR) PSGD_SPEEDUP_STEPS=$(PSGD_SPEEDUP_STEPS) PSGD_SPEEDUP_EVERY=$(PSGD_SPEEDUP_EVERY) PSGD_SPEEDUP_TARGET=$(PSGD_SPEEDUP_TARGET) PSGD_SPEEDUP_ARGS='$(PSGD_SPEEDUP_ARGS)'" \
	    $(foreach n,$(PSGD_SPEEDUP_RANKS),$(foreach s,$(PSGD_SPEEDUP_SEEDS),$(PSGD_SPEEDUP_WORK)/n$(n)-seed$(s).json))

# n workers: global batch n x BATCH, lr n x LR, STEPS / n steps (twice the ideal S(1) / n when S(1) ~ STEPS / 2).
psgd-speedup-runs: build
	@mkdir -p $(PSGD_SPEEDUP_WORK); set -e; for n in $(PSGD_SPEEDUP_RANKS); do for s in $(PSGD_SPEEDUP_SEEDS); do \
	    lr=$$(awk "BEGIN { print $(PSGD_SPEEDUP_LR) * $$n }"); every=$$(( $(PSGD_SPEEDUP_EVERY) / n > 1 ? $(PSGD_SPEEDUP_EVERY) / n : 1 )); \
	    echo "psgd-speedup: n = $$n, seed $$s, lr $$lr"; \
	    $(MPIEXEC_MPICH) -n $$n $(MPIPIPE) train --algo psgd $(PSGD_SPEEDUP_ARGS) --batch $$(( $(PSGD_SPEEDUP_BATCH) * n )) --lr $$lr \
	        --seed $$s --epochs 1000 --max-steps $$(( $(PSGD_SPEEDUP_STEPS) / n )) --train-loss-every $$every \
	        --output $(PSGD_SPEEDUP_WORK)/n$$n-seed$$s.json > $(PSGD_SPEEDUP_WORK)/n$$n-seed$$s.log 2>&1 \
	        || { echo "psgd-speedup: n = $$n, seed $$s failed: see $(PSGD_SPEEDUP_WORK)/n$$n-seed$$s.log"; exit 1; }; \
	done; done
