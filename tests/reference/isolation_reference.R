# Golden values for evmeta's within- vs between-study isolation-method contrasts (issue 16).
# Run from the repository root:  Rscript tests/reference/isolation_reference.R
# Reads tests/data/isolation/example_comparisons.csv, builds the study-mean-centred method
# dummies itself (within = dummy - study mean, between = study mean; reference "UC"), fits
# rma.mv(random = ~ 1 | study_id/experiment_id, REML) and writes
# tests/reference/isolation_reference.json (committed; the tests read it, CI needs no R).
suppressMessages({library(metafor); library(jsonlite)})

dat <- read.csv("tests/data/isolation/example_comparisons.csv", stringsAsFactors = FALSE)
levels_ <- sort(setdiff(unique(dat$isolation_method), "UC"))
terms <- character(0)
for (j in seq_along(levels_)) {
  d <- as.numeric(dat$isolation_method == levels_[j])
  m <- ave(d, dat$study_id, FUN = mean)
  dat[[paste0("between_", j - 1)]] <- m
  w <- d - m
  if (any(abs(w) > 1e-12)) {
    dat[[paste0("within_", j - 1)]] <- w
    terms <- c(terms, paste0("within_", j - 1))
  }
  terms <- c(terms, paste0("between_", j - 1))
}
fit <- rma.mv(yi, vi, mods = as.formula(paste("~", paste(terms, collapse = " + "))),
              random = ~ 1 | study_id/experiment_id, data = dat, method = "REML",
              control = list(rel.tol = 1e-10, iter.max = 10000, eval.max = 20000))
vb <- vcov(fit)
contrasts <- list()
for (j in seq_along(levels_)) {
  w <- paste0("within_", j - 1); b <- paste0("between_", j - 1)
  row <- list(method = levels_[j], between_estimate = unname(coef(fit)[b]),
              between_se = unname(sqrt(vb[b, b])))
  if (w %in% names(coef(fit))) {
    diff <- unname(coef(fit)[w] - coef(fit)[b])
    se <- sqrt(vb[w, w] + vb[b, b] - 2 * vb[w, b])
    row <- c(row, list(within_estimate = unname(coef(fit)[w]), within_se = unname(sqrt(vb[w, w])),
                       difference = diff, difference_pvalue = 2 * pnorm(-abs(diff / se))))
  }
  contrasts[[levels_[j]]] <- row
}
out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string,
            terms = terms, beta = unname(coef(fit)), se = unname(fit$se), sigma2 = fit$sigma2,
            contrasts = contrasts)
write_json(out, "tests/reference/isolation_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/isolation_reference.json\n")
