import re

from gpt_mini import world


def test_corpus_is_seeded_and_splits_are_disjoint():
    small = world.CorpusConfig(n_docs=600, seed=0)
    train, val = world.pretrain_corpus(small)
    assert (train, val) == world.pretrain_corpus(small)
    assert train != world.pretrain_corpus(world.CorpusConfig(n_docs=600, seed=1))[0]
    train_docs, val_docs = set(train.splitlines()), set(val.splitlines())
    assert len(val_docs) >= 50 and not train_docs & val_docs


def test_corpus_uses_only_the_alphabet_and_the_tokenizer_round_trips():
    train, val = world.pretrain_corpus(world.CorpusConfig(n_docs=300))
    assert set(train + val) <= set(world.ALPHABET)
    tok = world.tokenizer()
    assert tok.decode(tok.encode(val)) == val


def test_held_out_sums_never_reach_training_text():
    train, _ = world.pretrain_corpus(world.CorpusConfig(n_docs=3000))
    seen = {(int(a), int(b)) for a, b in re.findall(r"(?<!\d)(\d+)\+(\d+)=", train)}
    assert seen, "the corpus should contain sums"
    assert not seen & world.held_out_sums()
    for prompt, answer in world.sum_probes():
        a, b = map(int, prompt[:-1].split("+"))
        assert (a, b) in world.held_out_sums() and int(answer) == a + b


def test_corpus_has_every_kind_of_text():
    train, _ = world.pretrain_corpus(world.CorpusConfig(n_docs=500))
    assert " lives in " in train and " has a " in train and " works as a " in train
    assert "?" in train and "+" in train
    assert any(world.is_grammatical(s + ".") for s in train.replace("\n", " ").split(". "))


def test_grammar_checker_accepts_the_grammar_and_rejects_the_rest():
    import random
    rng = random.Random(0)
    assert all(world.is_grammatical(world.grammar_sentence(rng)) for _ in range(200))
    for bad in ("the dog sees.", "dog sees the cat.", "the dog sees the the cat.", "the dog sees the cat",
                "the purple dog sees the cat."):
        assert not world.is_grammatical(bad), bad


def test_people_are_fixed_and_answers_balanced():
    assert world.people() == world.people()
    cities = [p.city for p in world.people()]
    assert max(cities.count(c) for c in world.CITIES) == min(cities.count(c) for c in world.CITIES)
    probes = world.fact_probes()
    assert len(probes) == 3 * len(world.NAMES)
    assert all(p.endswith(("lives in", "has a", "works as a")) for _, p, _ in probes)
