"""The method's machinery, one task at a time: `schemes` (UpdateScheme, the one currency of what
trains), `costs` (its analytic backward memory and MACs) and `measure` (the same, measured),
`fisher` and `selection` (TinyTrain's criterion; `explain`: one task's walk as a table and
sentences), `sparse` (the engine that trains exactly a scheme), `heads` and `finetune` (one task),
`batched` (many tasks per launch)."""
