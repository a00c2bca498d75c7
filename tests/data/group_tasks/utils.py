"""Helper referenced by a ``!function`` tag in mini_group_it_colori.yaml."""


def domanda(doc):
    return f"Domanda: {doc['query']}\nRisposta:"
