# Golden values for evmeta's frequentist engine, from metafor's own example data sets.
# Run from the repository root:  Rscript tests/reference/metafor_reference.R
# Writes tests/reference/metafor_reference.json (committed; the tests read it, CI needs no R).
# Iterative estimators run to a tight threshold so that the reference is the exact root,
# not metafor's default 1e-5 stopping point.
suppressMessages({library(metafor); library(jsonlite); library(clubSandwich)})

tight <- list(threshold = 1e-12, maxiter = 10000, stepadj = 1, tol = 1e-13)
out <- list(metafor_version = as.character(packageVersion("metafor")),
            clubSandwich_version = as.character(packageVersion("clubSandwich")),
            r_version = R.version.string)

fit_info <- function(res) {
  p <- predict(res)
  info <- list(
    k = res$k, p = res$p, beta = as.numeric(res$beta), se = as.numeric(res$se),
    zval = as.numeric(res$zval), pval = as.numeric(res$pval),
    ci_lb = as.numeric(res$ci.lb), ci_ub = as.numeric(res$ci.ub),
    tau2 = res$tau2, se_tau2 = res$se.tau2, I2 = res$I2, H2 = res$H2,
    QE = res$QE, QEp = res$QEp, QM = res$QM, QMp = res$QMp, QMdf = res$QMdf,
    R2 = if (is.null(res$R2)) NA else res$R2,
    loglik = as.numeric(logLik(res)), aic = AIC(res), bic = BIC(res),
    weights = as.numeric(weights(res)),
    pred = as.numeric(p$pred)[1], pi_lb = as.numeric(p$pi.lb)[1], pi_ub = as.numeric(p$pi.ub)[1]
  )
  info
}

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg$ni <- bcg$tpos + bcg$tneg + bcg$cpos + bcg$cneg
out$bcg <- list(yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi), ablat = bcg$ablat, year = bcg$year,
                alloc = as.character(bcg$alloc), author = bcg$author,
                ni = bcg$ni)

# 1. Every tau^2 estimator with both tests, intercept only.
methods <- c("EE", "DL", "REML", "ML", "PM", "HE", "SJ", "EB")
out$intercept <- list()
for (m in methods) for (tst in c("z", "knha")) {
  res <- rma(yi, vi, data = bcg, method = m, test = tst, control = tight)
  out$intercept[[paste(m, tst, sep = "_")]] <- fit_info(res)
}

# 2. Meta-regression: continuous and categorical moderators, every method, both tests.
out$metareg <- list()
for (m in methods) for (tst in c("z", "knha")) {
  res <- rma(yi, vi, mods = ~ ablat + year, data = bcg, method = m, test = tst, control = tight)
  out$metareg[[paste("cont", m, tst, sep = "_")]] <- fit_info(res)
  res <- rma(yi, vi, mods = ~ alloc, data = bcg, method = m, test = tst, control = tight)
  out$metareg[[paste("cat", m, tst, sep = "_")]] <- fit_info(res)
}
res <- rma(yi, vi, mods = ~ ablat + year, data = bcg, method = "REML", control = tight)
pr <- predict(res, newmods = rbind(c(20, 1960), c(50, 1975)))
out$predict_newmods <- list(newmods = list(c(20, 1960), c(50, 1975)), pred = as.numeric(pr$pred), se = as.numeric(pr$se),
                            ci_lb = as.numeric(pr$ci.lb), ci_ub = as.numeric(pr$ci.ub),
                            pi_lb = as.numeric(pr$pi.lb), pi_ub = as.numeric(pr$pi.ub))

# 3. Q-profile confidence interval for tau^2.
res <- rma(yi, vi, data = bcg, method = "REML", control = tight)
ci <- confint(res, control = list(tol = 1e-12))
out$confint_tau2 <- list(tau2 = ci$random["tau^2", ], I2 = ci$random["I^2(%)", ], H2 = ci$random["H^2", ],
                         tau = ci$random["tau", ])
ci <- confint(rma(yi, vi, mods = ~ ablat, data = bcg, method = "REML", control = tight), control = list(tol = 1e-12))
out$confint_tau2_mods <- list(tau2 = ci$random["tau^2", ])

# 4. Leave-one-out and influence diagnostics.
l1o <- leave1out(res)
out$leave1out <- list(estimate = as.numeric(l1o$estimate), se = as.numeric(l1o$se), pval = as.numeric(l1o$pval),
                      ci_lb = as.numeric(l1o$ci.lb), ci_ub = as.numeric(l1o$ci.ub), Q = as.numeric(l1o$Q),
                      tau2 = as.numeric(l1o$tau2), I2 = as.numeric(l1o$I2))
inf <- influence(res)
out$influence <- list(rstudent = as.numeric(inf$inf$rstudent), dffits = as.numeric(inf$inf$dffits),
                      cook_d = as.numeric(inf$inf$cook.d), cov_r = as.numeric(inf$inf$cov.r),
                      tau2_del = as.numeric(inf$inf$tau2.del), QE_del = as.numeric(inf$inf$QE.del),
                      hat = as.numeric(inf$inf$hat), weight = as.numeric(inf$inf$weight))
resm <- rma(yi, vi, mods = ~ ablat, data = bcg, method = "REML", control = tight)
infm <- influence(resm)
out$influence_mods <- list(rstudent = as.numeric(infm$inf$rstudent), dffits = as.numeric(infm$inf$dffits),
                           cook_d = as.numeric(infm$inf$cook.d), cov_r = as.numeric(infm$inf$cov.r),
                           hat = as.numeric(infm$inf$hat))

# 5. Subgroups by allocation: separate fits, test of differences with separate and common tau^2.
sub <- list()
for (g in sort(unique(bcg$alloc))) {
  r <- rma(yi, vi, data = bcg, subset = alloc == g, method = "REML", control = tight)
  sub[[g]] <- list(k = r$k, beta = as.numeric(r$beta), se = r$se, tau2 = r$tau2, QE = r$QE, I2 = r$I2)
}
est <- sapply(sub, function(s) s$beta); ses <- sapply(sub, function(s) s$se)
sep <- rma(est, sei = ses, method = "EE")
common <- rma(yi, vi, mods = ~ alloc, data = bcg, method = "REML", control = tight)
out$subgroup <- list(groups = sub, Qb_separate = sep$QE, Qb_separate_p = sep$QEp, Qb_separate_df = sep$k - 1,
                     Qb_common = common$QM, Qb_common_p = common$QMp, tau2_common = common$tau2,
                     QE_fixed_total = rma(yi, vi, data = bcg, method = "EE")$QE,
                     QE_fixed_within = sum(sapply(sort(unique(bcg$alloc)), function(g)
                       rma(yi, vi, data = bcg, subset = alloc == g, method = "EE")$QE)))

# 6. Three-level model (districts / schools), REML and ML, with and without a moderator;
#    cluster-robust CR2 tests with Satterthwaite df (clubSandwich).
k11 <- dat.konstantopoulos2011
out$konstantopoulos <- list(yi = k11$yi, vi = k11$vi, district = k11$district, school = k11$school, year = k11$year)
for (m in c("REML", "ML")) {
  r <- rma.mv(yi, vi, random = ~ 1 | district/school, data = k11, method = m,
              control = list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000))
  W <- diag(1/k11$vi); X <- model.matrix(r); P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  i2 <- 100 * r$sigma2 / (sum(r$sigma2) + (r$k - r$p) / sum(diag(P)))
  out[[paste0("threelevel_", m)]] <- list(beta = as.numeric(r$beta), se = as.numeric(r$se), pval = as.numeric(r$pval),
    ci_lb = as.numeric(r$ci.lb), ci_ub = as.numeric(r$ci.ub), sigma2 = r$sigma2, QE = r$QE,
    loglik = as.numeric(logLik(r)), aic = AIC(r), bic = BIC(r), I2 = i2,
    pi_lb = predict(r)$pi.lb, pi_ub = predict(r)$pi.ub)
}
r <- rma.mv(yi, vi, mods = ~ I(year - 2000), random = ~ 1 | district/school, data = k11, method = "REML",
            control = list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000))
rk <- rma.mv(yi, vi, mods = ~ I(year - 2000), random = ~ 1 | district/school, data = k11, method = "REML",
             test = "t", control = list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000))
cs <- coef_test(r, vcov = "CR2", cluster = k11$district, test = "Satterthwaite")
out$threelevel_mods <- list(beta = as.numeric(r$beta), se = as.numeric(r$se), sigma2 = r$sigma2, QM = r$QM,
                            QMp = r$QMp, knha_se = as.numeric(rk$se), knha_pval = as.numeric(rk$pval),
                            robust_se = as.numeric(cs$SE), robust_df = as.numeric(cs$df_Satt),
                            robust_pval = as.numeric(cs$p_Satt))

# 7. Small-study effects: regtest (default and classical lm), trim-and-fill (L0, R0), cumulative.
rt <- regtest(res)
rt_lm <- regtest(res, model = "lm")
rt_n <- regtest(rma(yi, vi, ni = ni, data = bcg, method = "REML", control = tight), predictor = "sqrtninv")
out$regtest <- list(zval = rt$zval, pval = rt$pval, est = as.numeric(rt$est),
                    lm_zval = rt_lm$zval, lm_pval = rt_lm$pval, lm_dfs = rt_lm$dfs, lm_est = as.numeric(rt_lm$est),
                    n_zval = rt_n$zval, n_pval = rt_n$pval, n_est = as.numeric(rt_n$est))
h98 <- dat.hackshaw1998
rh <- rma(yi, vi, data = h98, method = "REML", control = tight)
out$hackshaw <- list(yi = h98$yi, vi = h98$vi)
for (est in c("L0", "R0")) {
  tf <- trimfill(rh, estimator = est, control = tight)
  out[[paste0("trimfill_", est)]] <- list(k0 = tf$k0, side = tf$side, beta = as.numeric(tf$beta), se = tf$se,
                                          ci_lb = tf$ci.lb, ci_ub = tf$ci.ub, tau2 = tf$tau2,
                                          filled_yi = as.numeric(tf$yi[tf$fill]))
}
tfb <- trimfill(res, control = tight)
out$trimfill_bcg <- list(k0 = tfb$k0, side = tfb$side, beta = as.numeric(tfb$beta), se = tfb$se)
cm <- cumul(res, order = bcg$year)
out$cumulative <- list(order = order(bcg$year), estimate = as.numeric(cm$estimate), se = as.numeric(cm$se),
                       tau2 = as.numeric(cm$tau2), ci_lb = as.numeric(cm$ci.lb), ci_ub = as.numeric(cm$ci.ub))

# 8. clubSandwich HTZ Wald tests (Tipton & Pustejovsky 2015) and CR2 linear contrasts with
#    Satterthwaite df: three-level model with two moderators (clusters: districts) and the
#    BCG meta-regression (clusters: trials, i.e. every row its own cluster).
k11$y2 <- k11$year - 2000
r2 <- rma.mv(yi, vi, mods = ~ y2 + I(y2^2), random = ~ 1 | district/school, data = k11, method = "REML",
             control = list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000))
htz2 <- Wald_test(r2, constraints = constrain_zero(2:3), vcov = "CR2", cluster = k11$district, test = "HTZ")
htz1 <- Wald_test(r, constraints = constrain_zero(2), vcov = "CR2", cluster = k11$district, test = "HTZ")
newx <- rbind(c(1, -10, 100), c(1, 5, 25))
lc <- linear_contrast(r2, vcov = "CR2", cluster = k11$district, contrasts = newx, test = "Satterthwaite", level = 0.9)
cs2 <- coef_test(r2, vcov = "CR2", cluster = k11$district, test = "Satterthwaite")
out$htz_threelevel <- list(F = htz2$Fstat, df_num = htz2$df_num, df_denom = htz2$df_denom, p = htz2$p_val,
                           F1 = htz1$Fstat, df_denom1 = htz1$df_denom, p1 = htz1$p_val,
                           se = as.numeric(cs2$SE), df = as.numeric(cs2$df_Satt),
                           newx = lapply(seq_len(nrow(newx)), function(i) newx[i, -1]),
                           lc_est = as.numeric(lc$Est), lc_se = as.numeric(lc$SE), lc_df = as.numeric(lc$df),
                           lc_lower = as.numeric(lc$CI_L), lc_upper = as.numeric(lc$CI_U))
ru <- rma(yi, vi, mods = ~ ablat + year, data = bcg, method = "REML", control = tight)
htzu <- Wald_test(ru, constraints = constrain_zero(2:3), vcov = "CR2", cluster = seq_len(nrow(bcg)), test = "HTZ")
csu <- coef_test(ru, vcov = "CR2", cluster = seq_len(nrow(bcg)), test = "Satterthwaite")
out$htz_bcg <- list(F = htzu$Fstat, df_num = htzu$df_num, df_denom = htzu$df_denom, p = htzu$p_val,
                    se = as.numeric(csu$SE), df = as.numeric(csu$df_Satt), pval = as.numeric(csu$p_Satt))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), "tests/reference/metafor_reference.json")
cat("wrote tests/reference/metafor_reference.json\n")
