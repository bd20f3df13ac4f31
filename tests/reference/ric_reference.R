# Golden values for the import-wide round trip on a real published comparison table
# (tests/data/ric: remote ischemic conditioning vs control, infarct volume, rodent stroke).
# Run from the repository root:  Rscript tests/reference/ric_reference.R
# Writes tests/reference/ric_reference.json (committed; tests read it, CI needs no R).
#
# escalc is applied to the table as it stands (the control n already split among shared
# arms, as in the authors' analysis), then random-effects models with the DL and REML
# estimators of tau^2.
suppressMessages({library(metafor); library(jsonlite)})

d <- read.csv("tests/data/ric/ric_infarct_volume_wide.csv", check.names = FALSE)
d$table_row <- seq_len(nrow(d)) + 1  # row number in the file, header = 1
es <- escalc("SMD", m1i = Mean_RIC, sd1i = SD_RIC, n1i = n_RIC,
             m2i = Mean_Control, sd2i = SD_Control, n2i = n_Control, data = d)
es <- es[!is.na(es$yi), ]
out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string,
            k = nrow(es), studies = length(unique(es$RefID)),
            table_row = es$table_row, yi = as.numeric(es$yi), vi = as.numeric(es$vi))
for (method in c("DL", "REML")) {
  # A tight convergence threshold, so REML is compared at its optimum, not at 1e-5.
  fit <- rma(yi, vi, data = es, method = method, control = list(threshold = 1e-12, maxiter = 1000))
  out[[method]] <- list(estimate = as.numeric(fit$b), se = as.numeric(fit$se), tau2 = fit$tau2,
                        i2 = fit$I2, ci_lb = fit$ci.lb, ci_ub = fit$ci.ub)
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/ric_reference.json")
