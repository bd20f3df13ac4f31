# metafor's rma.mv optimum on 30 data sets simulated from the example's design
# (tests/example_design_sim.py; effect sizes in multilevel_convergence_yi.csv, written by
# python -m tests.reference.multilevel_convergence_data), three-level model
# random = ~ 1 | study_id/experiment_id, REML, with and without the example's moderators.
# Run from the repository root:  Rscript tests/reference/multilevel_convergence.R
# Writes tests/reference/multilevel_convergence.json (committed; tests read it).
suppressMessages({library(metafor); library(jsonlite)})

design <- read.csv("tests/data/example_design.csv", stringsAsFactors = FALSE)
design$isolation_method <- factor(design$isolation_method,
                                  levels = c("UC", "SEC", "TFF+SEC", "UC+DG", "UF", "precipitation"))
ys <- read.csv("tests/reference/multilevel_convergence_yi.csv", check.names = FALSE)
ctrl <- list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)

# Tight tolerances where nlminb reaches them; otherwise metafor's defaults (recorded).
fit_with <- function(dat, mods, control) {
  if (is.null(mods)) {
    rma.mv(yi, vi, random = ~ 1 | study_id/experiment_id, data = dat, method = "REML", control = control)
  } else {
    rma.mv(yi, vi, mods = mods, random = ~ 1 | study_id/experiment_id, data = dat, method = "REML",
           control = control)
  }
}
fit_one <- function(dat, mods) {
  control <- "tight"
  res <- tryCatch(fit_with(dat, mods, ctrl), error = function(e) NULL)
  if (is.null(res)) {
    control <- "default"
    res <- fit_with(dat, mods, list())
  }
  list(sigma2 = as.numeric(res$sigma2), loglik = as.numeric(logLik(res)), beta = as.numeric(res$b),
       control = control)
}

out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string,
            fits = list())
for (name in names(ys)) {
  dat <- design
  dat$yi <- ys[[name]]
  seed <- sub("^y", "", name)
  out$fits[[seed]] <- list(intercept = fit_one(dat, NULL),
                           mods = fit_one(dat, ~ isolation_method + quality_score))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           "tests/reference/multilevel_convergence.json")
cat("wrote tests/reference/multilevel_convergence.json\n")
