# The two commands a user needs; both set up everything first (idempotent, fast when done).
#   make demo   set up, then run the live demo on the embedded default listener
#   make test   set up, then run the whole test suite
SHELL := /bin/bash
ENV := source scripts/env.sh &&

.PHONY: setup demo test bench clean

setup:
	bash scripts/setup_env.sh

demo: setup
	$(ENV) python -m listener_head_ros.ros.demo

test: setup
	$(ENV) pytest

bench: setup
	$(ENV) python benchmarks/bench_listener.py

clean:
	rm -rf build install log
