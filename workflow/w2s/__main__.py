from .cli import main

# vLLM's engine processes re-import the main module; the guard keeps them from re-running the CLI.
if __name__ == "__main__":
    main()
