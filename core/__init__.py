"""What the gateway and the console share: config, database, models, money, ledger, rate card."""
