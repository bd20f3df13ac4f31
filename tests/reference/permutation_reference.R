# Exact permutation tests (metafor::permutest, exact = TRUE) for evmeta's permutation_test.
# Run from the repository root:  Rscript tests/reference/permutation_reference.R
# Writes tests/reference/permutation_reference.json (committed; the tests read it).
# Data: metafor's dat.bcg (log risk ratios), as in metafor_reference.R; exact tests need
# small k: the first 10 trials without moderators (2^10 = 1,024 sign patterns) and the first
# 6 with ~ ablat (6!/2! = 360 distinct row permutations: two trials share a latitude).
suppressMessages({library(metafor); library(jsonlite)})

tight <- list(threshold = 1e-12, maxiter = 10000, stepadj = 1, tol = 1e-13)
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
ten <- bcg[1:10, ]
small <- bcg[1:6, ]
info <- function(res, perm) {
  list(method = res$method, test = res$test, k = res$k,
       zval = as.numeric(res$zval), pval = as.numeric(res$pval),
       perm_pval = as.numeric(perm$pval), QM = res$QM, perm_QMp = perm$QMp)
}
cases <- list()
for (method in c("REML", "DL")) {
  for (test in c("z", "knha")) {
    res <- rma(yi, vi, data = ten, method = method, test = test, control = tight)
    cases[[paste("intercept", method, test)]] <- info(res, permutest(res, exact = TRUE, progbar = FALSE))
    res <- rma(yi, vi, mods = ~ ablat, data = small, method = method, test = test, control = tight)
    cases[[paste("ablat", method, test)]] <- info(res, permutest(res, exact = TRUE, progbar = FALSE))
  }
}
out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string,
            bcg = list(yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi), ablat = bcg$ablat),
            cases = cases)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/permutation_reference.json")
