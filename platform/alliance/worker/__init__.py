"""Background work: the dramatiq broker, tasks (the actor wrapper), the transactional outbox and its relay,
and the scheduler of periodic jobs."""
