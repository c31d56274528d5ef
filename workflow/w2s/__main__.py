from .cli import main

# vLLM's engine processes re-import the main module; the guard keeps them from re-running the CLI.
# A vLLM job freezes its heap when its engine closes (w2s.vllm_engine.VLLMEngine.close), so its exit
# skips the garbage collections that would rescan it; every other command exits with the usual ones,
# which run the finalizers of objects held in reference cycles.
if __name__ == "__main__":
    main(process_exits=True)
