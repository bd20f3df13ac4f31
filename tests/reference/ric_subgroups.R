# Golden values for the end-to-end import-wide run with the review's own columns
# (tests/data/ric: remote ischemic conditioning vs control, infarct volume; Ripley et al.
# 2021). Run from the repository root:  Rscript tests/reference/ric_subgroups.R
# Writes tests/reference/ric_subgroups.json (committed; tests read it, CI needs no R).
#
# The published subgroups (the authors' 02_Analysis.R: species, stroke type, time of
# conditioning, type of RIC) and meta-regressions on minutes of occlusion, each a
# random-effects model (REML, z tests) fitted separately per subgroup level, as
# evmeta's subgroup_analysis does. The tidied table keeps the conditioning variables in
# two columns (one part of the comparisons in "Time.cond", the others in
# "Time.cond_RIC"); they are coalesced here as the map's list [moderators] does.
suppressMessages({library(metafor); library(jsonlite)})

d <- read.csv("tests/data/ric/ric_infarct_volume_wide.csv", check.names = FALSE, na.strings = c("", "NA"))
coalesce <- function(a, b) ifelse(is.na(a), b, a)
d$conditioning <- coalesce(d$Time.cond, d$Time.cond_RIC)
d$ric_type <- coalesce(d$Type.RIC, d$Type.RIC_RIC)
occ <- coalesce(as.character(d$Occlusion), d$Occlusion_RIC)
d$ric_occlusion_min <- suppressWarnings(as.numeric(occ))  # "Not reported", "unclear" -> NA
d$stroke_type <- d$Stroke.Type
d$species <- tolower(d$Species)
es <- escalc("SMD", m1i = Mean_RIC, sd1i = SD_RIC, n1i = n_RIC,
             m2i = Mean_Control, sd2i = SD_Control, n2i = n_Control, data = d)
es <- es[!is.na(es$yi), ]
ctrl <- list(threshold = 1e-12, maxiter = 1000)
out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string,
            k = nrow(es), sign = "escalc yi (RIC minus control); evmeta flips it (smaller infarcts are better)")
main <- rma(yi, vi, data = es, method = "REML", control = ctrl)
out$overall <- list(k = main$k, estimate = as.numeric(main$b), se = main$se, tau2 = main$tau2)
out$subgroups <- list()
for (by in c("species", "stroke_type", "conditioning", "ric_type")) {
  levels <- list()
  for (level in sort(unique(es[[by]]))) {
    sub <- es[es[[by]] == level & !is.na(es[[by]]), ]
    if (nrow(sub) == 1) {
      levels[[level]] <- list(k = 1, estimate = sub$yi, se = sqrt(sub$vi), tau2 = 0)
      next
    }
    fit <- rma(yi, vi, data = sub, method = "REML", control = ctrl)
    levels[[level]] <- list(k = fit$k, estimate = as.numeric(fit$b), se = fit$se, tau2 = fit$tau2)
  }
  out$subgroups[[by]] <- levels
}
reg <- rma(yi, vi, mods = ~ ric_occlusion_min, data = es, method = "REML", control = ctrl)
out$meta_regression_occlusion <- list(k = reg$k, intercept = as.numeric(reg$b[1]), slope = as.numeric(reg$b[2]),
                                      se_slope = reg$se[2], tau2 = reg$tau2)
reg <- rma(yi, vi, mods = ~ stroke_type, data = es, method = "REML", control = ctrl)
out$meta_regression_stroke_type <- list(k = reg$k, intercept = as.numeric(reg$b[1]), slope = as.numeric(reg$b[2]),
                                        se_slope = reg$se[2], tau2 = reg$tau2)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/ric_subgroups.json")
