"""``python -m trainlab`` runs the command line; so does ``torchrun ... -m trainlab run NAME``."""

from trainlab.cli import main

if __name__ == "__main__":
    main()
