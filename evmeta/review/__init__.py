"""The reviewer's chores beside the analysis: bibliographic look-up, dual-extraction
reconciliation, de-duplication of search exports (and, later, screening and PRISMA counts)."""
