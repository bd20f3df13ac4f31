# Golden values for evmeta.models.dose_response (one-stage dose-response meta-analysis),
# from metafor 3.8.1 rma.mv with a known sampling covariance V and splines::ns.
# Run from the repository root:  Rscript tests/reference/dose_response.R
# Reads tests/data/dose_response/example_dosed.csv and example_dosed_V.csv (written by
# tests/data/dose_response/make_dose_response_example.py); writes
# tests/reference/dose_response.json (committed; tests read it, CI needs no R).
suppressMessages({library(metafor); library(jsonlite); library(splines)})

d <- read.csv("tests/data/dose_response/example_dosed.csv", stringsAsFactors = FALSE)
e <- read.csv("tests/data/dose_response/example_dosed_V.csv")
k <- nrow(d)
V <- matrix(0, k, k)
V[cbind(e$i, e$j)] <- e$v
V[cbind(e$j, e$i)] <- e$v
d$x <- log10(d$dose_ug_protein_per_kg)
# The REML surface is flat near its maximum: metafor's default nlminb stops with the
# variance component ~1e-6 from the maximum (log-likelihood 1e-11 lower); bobyqa with a
# tight final trust radius reaches it, which makes 1e-6 parity meaningful.
tight <- list(optimizer = "bobyqa", rhoend = 1e-12)

q <- quantile(d$x, c(0.1, 0.5, 0.9), type = 7)
grid_x <- seq(min(d$x), max(d$x), length.out = 25)
basis <- ns(d$x, knots = q[2], Boundary.knots = q[c(1, 3)])
grid_basis <- predict(basis, grid_x)

fit_out <- function(fit, newmods) {
  p <- predict(fit, newmods = newmods)
  list(beta = as.numeric(fit$b), se = as.numeric(fit$se), vb = unname(as.matrix(fit$vb)),
       sigma2 = as.numeric(fit$sigma2), logLik = as.numeric(logLik(fit)),
       pred = as.numeric(p$pred), pred_se = as.numeric(p$se),
       ci_lb = as.numeric(p$ci.lb), ci_ub = as.numeric(p$ci.ub),
       pi_lb = as.numeric(p$pi.lb), pi_ub = as.numeric(p$pi.ub))
}

out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string,
            k = k, knots_x = as.numeric(q), grid_x = grid_x,
            ns_basis = unname(as.matrix(unclass(basis))[, 1:2]),
            ns_grid = unname(as.matrix(unclass(grid_basis))[, 1:2]))

# Log-linear and spline curves, random intercepts per study (REML), with V.
lin <- rma.mv(yi, V, mods = ~ x, random = ~ 1 | study_id, data = d, control = tight)
out$linear_study <- fit_out(lin, grid_x)
spl <- rma.mv(yi, V, mods = ~ ns(x, knots = q[2], Boundary.knots = q[c(1, 3)]),
              random = ~ 1 | study_id, data = d, control = tight)
out$spline_study <- fit_out(spl, unname(grid_basis[, 1:2]))
spl2 <- rma.mv(yi, V, mods = ~ ns(x, knots = q[2], Boundary.knots = q[c(1, 3)]),
               random = ~ 1 | study_id / experiment_id, data = d, control = tight)
out$spline_study_experiment <- fit_out(spl2, unname(grid_basis[, 1:2]))
spl_ml <- rma.mv(yi, V, mods = ~ ns(x, knots = q[2], Boundary.knots = q[c(1, 3)]),
                 random = ~ 1 | study_id, data = d, method = "ML", control = tight)
out$spline_study_ml <- fit_out(spl_ml, unname(grid_basis[, 1:2]))

# Within-study information only: study fixed effects, a random effect per comparison.
within <- rma.mv(yi, V, mods = ~ factor(study_id) + x, random = ~ 1 | comparison_id, data = d, control = tight)
out$within <- list(slope = as.numeric(tail(within$b, 1)), se = as.numeric(tail(within$se, 1)),
                   sigma2 = as.numeric(within$sigma2))
# Between-study information only: study means (variance 1' V_s 1 / n_s^2) on mean log dose.
g <- factor(d$study_id, levels = unique(d$study_id))
A <- sapply(levels(g), function(s) as.numeric(g == s))
n_s <- colSums(A)
means <- data.frame(y = colSums(A * d$yi) / n_s, v = diag(t(A) %*% V %*% A) / n_s^2,
                    x = colSums(A * d$x) / n_s)
between <- rma(y, v, mods = ~ x, data = means, method = "REML")
out$between <- list(slope = as.numeric(between$b[2]), se = as.numeric(between$se[2]),
                    tau2 = as.numeric(between$tau2))
# Within and between slopes in one model (study-mean and within-study-centred log dose).
d$x_between <- ave(d$x, d$study_id)
d$x_within <- d$x - d$x_between
wb <- rma.mv(yi, V, mods = ~ x_between + x_within, random = ~ 1 | study_id, data = d, control = tight)
cc <- c(0, -1, 1)
diff <- sum(cc * wb$b)
diff_se <- sqrt(as.numeric(t(cc) %*% wb$vb %*% cc))
out$within_between <- list(beta = as.numeric(wb$b), se = as.numeric(wb$se),
                           sigma2 = as.numeric(wb$sigma2), diff = diff, diff_se = diff_se,
                           diff_p = 2 * pnorm(-abs(diff / diff_se)))

# Emax (hyperbolic, no effect at dose 0): E(d) = Emax d / (ED50 + d). For a fixed ED50 it is
# linear in Emax; the profile ML log-likelihood over log10 ED50 is maximized by optimize().
profile <- function(log_ed50) {
  d$g <- d$dose_ug_protein_per_kg / (10^log_ed50 + d$dose_ug_protein_per_kg)
  logLik(rma.mv(yi, V, mods = ~ 0 + g, random = ~ 1 | study_id, data = d, method = "ML", control = tight))
}
lims <- log10(range(d$dose_ug_protein_per_kg)) + c(-2, 2)
best <- optimize(profile, lims, maximum = TRUE, tol = 1e-10)
d$g <- d$dose_ug_protein_per_kg / (10^best$maximum + d$dose_ug_protein_per_kg)
em <- rma.mv(yi, V, mods = ~ 0 + g, random = ~ 1 | study_id, data = d, method = "ML", control = tight)
out$emax_study_ml <- list(log10_ed50 = best$maximum, logLik = as.numeric(best$objective),
                          emax = as.numeric(em$b), sigma2 = as.numeric(em$sigma2),
                          profile_at = c(1, 2, 3), profile_logLik = sapply(c(1, 2, 3), function(t) as.numeric(profile(t))),
                          # upper limit of the 95% profile likelihood interval of log10 ED50
                          profile_upper = uniroot(function(t) profile(t) - (best$objective - qchisq(0.95, 1) / 2),
                                                  c(best$maximum, lims[2]), tol = 1e-10)$root,
                          profile_at_lower_bound = as.numeric(profile(lims[1])))

# Sensitivity: doses reported (or converted with the study's own body weight), not imputed.
r <- d[d$dose_provenance_ug_protein_per_kg != "imputed", ]
keep <- d$dose_provenance_ug_protein_per_kg != "imputed"
lin_r <- rma.mv(yi, V[keep, keep], mods = ~ x, random = ~ 1 | study_id, data = r, control = tight)
out$linear_reported <- list(k = nrow(r), beta = as.numeric(lin_r$b), se = as.numeric(lin_r$se),
                            sigma2 = as.numeric(lin_r$sigma2))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, matrix = "rowmajor"),
           "tests/reference/dose_response.json")
