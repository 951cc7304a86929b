"""What Fin read and wrote: a bounded ledger of Fin API calls, and the human replies that Fin
has yet to fetch (the "Fin has it" receipts and the alert when it does not come)."""
