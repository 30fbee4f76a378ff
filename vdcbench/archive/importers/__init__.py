"""Importers: condensed sets made by other code, turned into CondensedSets the archive writer and
the evaluator accept. Each reads its layout as untrusted input."""
