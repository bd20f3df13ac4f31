# Golden values for evmeta's location-scale model (evmeta.models.frequentist.location_scale)
# and the heteroscedasticity test, from metafor's rma(scale = ~ ...) on real published data:
# dat.bangertdrowns2004 (Bangert-Drowns et al. 2004, writing-to-learn interventions; 48
# studies, standardized mean differences), which ships with metafor.
# Run from the repository root:  Rscript tests/reference/location_scale.R
# Writes tests/reference/location_scale.json (committed; the tests read it, CI needs no R).
suppressMessages({library(metafor); library(jsonlite)})

tight <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14, maxit = 10000)
out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string,
            data_source = "metafor::dat.bangertdrowns2004 (Bangert-Drowns, Hurley & Wilkinson 2004, Rev Educ Res 74:29-58)")

d <- dat.bangertdrowns2004
d <- d[!is.na(d$meta) & !is.na(d$imag), ]
d$meta_f <- ifelse(d$meta == 1, "yes", "no")
d$log_ni <- log(d$ni)
out$data <- list(id = d$id, yi = as.numeric(d$yi), vi = as.numeric(d$vi), meta = d$meta_f,
                 log_ni = d$log_ni, imag = d$imag, grade = d$grade)

ls_info <- function(res, res0, newscale) {
  # The model without scale moderators, fitted as rma(scale = ~ 1) so anova() accepts the pair.
  a <- anova(res, res0)
  pr <- predict(res, newscale = newscale, transf = exp)
  prl <- predict(res, newscale = newscale)
  list(beta = as.numeric(res$beta), se = as.numeric(res$se), alpha = as.numeric(res$alpha),
       se_alpha = as.numeric(res$se.alpha), zval_alpha = as.numeric(res$zval.alpha),
       pval_alpha = as.numeric(res$pval.alpha), ci_lb_alpha = as.numeric(res$ci.lb.alpha),
       ci_ub_alpha = as.numeric(res$ci.ub.alpha), va = as.numeric(res$va),
       tau2 = as.numeric(res$tau2), QS = res$QS, QSp = res$QSp, QM = res$QM, QMp = res$QMp,
       loglik = as.numeric(logLik(res)), aic = AIC(res), bic = BIC(res),
       lrt = a$LRT, lrt_pval = a$pval, loglik_null = as.numeric(logLik(res0)),
       newscale = newscale, tau2_at = as.numeric(pr$pred), tau2_at_lb = as.numeric(pr$ci.lb),
       tau2_at_ub = as.numeric(pr$ci.ub), log_tau2_at_se = as.numeric(prl$se))
}

out$fits <- list()
for (m in c("ML", "REML")) {
  # Categorical scale moderator (meta-cognitive prompts, yes/no), intercept-only location.
  res <- rma(yi, vi, scale = ~ meta_f, data = d, method = m, control = tight)
  res0 <- rma(yi, vi, scale = ~ 1, data = d, method = m, control = tight)
  info <- ls_info(res, res0, c(0, 1))
  # metafor 3.8.1's predict() with only newscale returns log tau^2, so the prediction
  # interval of the intercept-only location part is assembled from metafor's pieces.
  crit <- qnorm(0.975)
  info$pred <- rep(as.numeric(res$beta), 2); info$pred_se <- rep(res$se, 2)
  info$pi_lb <- info$pred - crit * sqrt(res$se^2 + info$tau2_at)
  info$pi_ub <- info$pred + crit * sqrt(res$se^2 + info$tau2_at)
  out$fits[[paste0("categorical_", m)]] <- info
  # Continuous scale moderator (log sample size) with a location moderator (imaginative writing).
  res <- rma(yi, vi, mods = ~ imag, scale = ~ log_ni, data = d, method = m, control = tight)
  res0 <- rma(yi, vi, mods = ~ imag, scale = ~ 1, data = d, method = m, control = tight)
  info <- ls_info(res, res0, c(log(50), log(200)))
  pi <- predict(res, newmods = c(0, 1), newscale = c(log(50), log(200)))
  info$pi_lb <- as.numeric(pi$pi.lb); info$pi_ub <- as.numeric(pi$pi.ub)
  info$pred <- as.numeric(pi$pred); info$pred_se <- as.numeric(pi$se)
  out$fits[[paste0("continuous_", m)]] <- info
}

# Score test of H0: alpha_1 = 0 (log-linear tau^2 in meta), at the fit without scale.
# Score: central finite differences of metafor's own log-likelihood with alpha fixed
# (rma(scale =, alpha = c(a0, a1))), so the reference does not share evmeta's algebra;
# information: the expected (Fisher) information 1/2 tr(P V_j P V_k) (ML: W in place of P).
score_test <- function(m, scale_col) {
  res0 <- rma(yi, vi, data = d, method = m, control = list(threshold = 1e-12, maxiter = 10000))
  a0 <- log(res0$tau2)
  Z <- cbind(1, d[[scale_col]])
  ll_at <- function(a) as.numeric(logLik(rma(yi, vi, scale = ~ meta01, data = d, method = m, alpha = a)))
  h <- 1e-4
  U <- sapply(1:2, function(j) { e <- c(0, 0); e[j] <- h; (ll_at(c(a0, 0) + e) - ll_at(c(a0, 0) - e)) / (2 * h) })
  W <- diag(1 / (d$vi + res0$tau2)); X <- matrix(1, nrow(d), 1)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  M <- if (m == "REML") P else W
  Vj <- lapply(1:2, function(j) diag(res0$tau2 * Z[, j]))
  I <- matrix(0, 2, 2)
  for (j in 1:2) for (l in 1:2) I[j, l] <- 0.5 * sum(diag(M %*% Vj[[j]] %*% M %*% Vj[[l]]))
  stat <- as.numeric(t(U) %*% solve(I) %*% U)
  list(score = U, stat = stat, pval = pchisq(stat, 1, lower.tail = FALSE), tau2_null = res0$tau2)
}
d$meta01 <- d$meta
out$score <- list(ML = score_test("ML", "meta01"), REML = score_test("REML", "meta01"))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/location_scale.json")
