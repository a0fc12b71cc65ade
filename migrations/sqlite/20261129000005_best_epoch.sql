-- The best epoch so far by the run's monitor, as each epoch's event has it (NULL for
-- epochs recorded before best epochs were kept).
ALTER TABLE epochs ADD COLUMN best_epoch INTEGER;
