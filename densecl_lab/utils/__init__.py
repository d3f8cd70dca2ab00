# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Helpers shared by the lab's runs: staged, resumable runs
(:mod:`.staged_run`) and file digests (:mod:`.hashing`)."""
