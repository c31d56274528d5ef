import gc

from .cli import main

# vLLM's engine processes re-import the main module; the guard keeps them from re-running the CLI.
if __name__ == "__main__":
    main(process_exits=True)
    # The job's outputs are written and closed. What remains is interpreter shutdown, whose garbage
    # collections rescan every object torch, transformers and vLLM created (2.5 s of a vLLM labeling
    # job on 2 CPU cores, 1.2 s of a transformers one). Frozen objects are skipped; the OS frees them.
    gc.freeze()
