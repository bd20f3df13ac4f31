# Golden values for evmeta's step-function selection models (issue 16), from metafor's selmodel().
# Run from the repository root:  Rscript tests/reference/selmodel_reference.R
# Writes tests/reference/selmodel_reference.json (committed; the tests read it, CI needs no R).
# The JSON stores yi, vi and moderators of every data set, so the tests need no parsing.
# metafor's defaults throughout (type = "stepfun", alternative = "greater", ML refit, delta mapped
# to (0, 100), numDeriv Hessian), except optim's relative tolerance, tightened so that the
# reference is the maximum of the likelihood rather than BFGS's default stopping point.
suppressMessages({library(metafor); library(jsonlite)})

tight <- list(reltol = 1e-14, maxit = 10000)
out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string)

sel_info <- function(sel) {
  list(beta = as.numeric(sel$beta), se = as.numeric(sel$se), ci_lb = as.numeric(sel$ci.lb),
       ci_ub = as.numeric(sel$ci.ub), pval = as.numeric(sel$pval), tau2 = sel$tau2,
       se_tau2 = sel$se.tau2, delta = as.numeric(sel$delta), se_delta = as.numeric(sel$se.delta),
       ll = sel$ll, ll0 = sel$ll0, LRT = sel$LRT, LRTdf = sel$LRTdf, LRTp = sel$LRTp,
       k_per_interval = as.integer(sel$ptable$k), steps = as.numeric(sel$steps))
}

run_cases <- function(dat, cases) {
  res <- list()
  for (name in names(cases)) {
    cs <- cases[[name]]
    fit <- if (is.null(cs$mods)) rma(yi, vi, data = dat) else rma(yi, vi, mods = as.formula(cs$mods), data = dat)
    sel <- selmodel(fit, type = "stepfun", steps = cs$steps, alternative = cs$alternative, control = tight)
    res[[name]] <- c(list(steps_in = cs$steps, alternative = cs$alternative,
                          mods = if (is.null(cs$mods)) "" else cs$mods), sel_info(sel))
  }
  res
}

# 1. Passive smoking and lung cancer (log odds ratios), metadat::dat.hackshaw1998, k = 37.
hack <- dat.hackshaw1998
out$hackshaw1998 <- list(
  yi = as.numeric(hack$yi), vi = as.numeric(hack$vi), design = hack$design, year = hack$year,
  cases = run_cases(hack, list(
    one_step = list(steps = c(0.025), alternative = "greater"),
    two_steps = list(steps = c(0.025, 0.5), alternative = "greater"),
    two_sided = list(steps = c(0.05), alternative = "two.sided"),
    mods_year = list(steps = c(0.025), alternative = "greater", mods = "~ year"),
    mods_design = list(steps = c(0.05), alternative = "greater", mods = "~ design"))))

# 2. Primary-care facilitation (standardized mean differences), metadat::dat.baskerville2012, k = 23.
bask <- dat.baskerville2012
bask$yi <- bask$smd
bask$vi <- bask$se^2
out$baskerville2012 <- list(
  yi = as.numeric(bask$yi), vi = as.numeric(bask$vi), blind = bask$blind,
  cases = run_cases(bask, list(
    one_step = list(steps = c(0.025), alternative = "greater"),
    two_steps = list(steps = c(0.025, 0.10), alternative = "greater"),
    two_sided = list(steps = c(0.05), alternative = "two.sided"),
    mods_blind = list(steps = c(0.025), alternative = "greater", mods = "~ blind"))))

# 3. Modular CAR-T platforms, tumour volume (Hedges' g), vendored tests/data/cart (see PROVENANCE.md).
num <- function(x) as.numeric(gsub(",", "", as.character(x)))
cart <- read.csv("tests/data/cart/cart_tumor_volume.csv", check.names = TRUE)
cart <- escalc(measure = "SMD", m1i = num(mean.ex), sd1i = num(sd.ex), n1i = num(no.ex),
               m2i = num(mean.nc), sd2i = num(sd.nc), n2i = num(no.nc), data = cart)
cart <- cart[is.finite(cart$yi) & is.finite(cart$vi) & cart$vi > 0, ]
cart$yi <- -cart$yi   # tumour volume: lower is better; positive = benefit, as evmeta orients
out$cart_volume <- list(
  yi = as.numeric(cart$yi), vi = as.numeric(cart$vi),
  cases = run_cases(cart, list(
    one_step = list(steps = c(0.025), alternative = "greater"),
    two_sided = list(steps = c(0.10), alternative = "two.sided"))))

write_json(out, "tests/reference/selmodel_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/selmodel_reference.json\n")
