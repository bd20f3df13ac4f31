# Golden values for evmeta.models.frequentist.multilevel_heterogeneity: I^2 per level by the
# ratio method (Nakagawa & Santos 2012, Evol Ecol 26:1253-1274) and the matrix method
# (Viechtbauer's generalized I^2, (k - p) / tr(P) with W = V^-1), the SD-scale CVH and M of
# Yang et al. (2023, Methods Ecol Evol), and the marginal and conditional R^2 of Nakagawa &
# Schielzeth (2013) for multilevel meta-regression, computed from metafor's rma.mv output by
# the published formulas, on real data: dat.konstantopoulos2011 (56 studies in 11 school
# districts; Konstantopoulos 2011, Res Synth Methods 2:61-76), which ships with metafor.
# Run from the repository root:  Rscript tests/reference/multilevel_heterogeneity.R
suppressMessages({library(metafor); library(jsonlite)})

tight <- list(rel.tol = 1e-10, iter.max = 10000, eval.max = 10000)
out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string,
            data_source = "metafor::dat.konstantopoulos2011")
k11 <- dat.konstantopoulos2011
out$data <- list(yi = k11$yi, vi = k11$vi, district = k11$district, school = k11$school, year = k11$year)

heterogeneity <- function(r) {
  s2 <- r$sigma2
  wi <- 1 / r$vi
  typical_ratio <- sum(wi) * (r$k - 1) / (sum(wi)^2 - sum(wi^2))
  W <- solve(r$V); X <- model.matrix(r)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  typical_matrix <- (r$k - r$p) / sum(diag(P))
  b0 <- abs(as.numeric(r$beta)[1])
  fix <- var(as.numeric(X %*% r$beta))
  list(sigma2 = s2, beta0 = as.numeric(r$beta)[1],
       i2_ratio = 100 * s2 / (sum(s2) + typical_ratio), i2_ratio_total = 100 * sum(s2) / (sum(s2) + typical_ratio),
       i2_matrix = 100 * s2 / (sum(s2) + typical_matrix), i2_matrix_total = 100 * sum(s2) / (sum(s2) + typical_matrix),
       cvh = sqrt(s2) / b0, cvh_total = sqrt(sum(s2)) / b0,
       m = sqrt(s2) / (b0 + sqrt(sum(s2))), m_total = sqrt(sum(s2)) / (b0 + sqrt(sum(s2))),
       r2_marginal = fix / (fix + sum(s2)),
       r2_conditional = (fix + sum(s2) - s2[length(s2)]) / (fix + sum(s2)))
}

for (m in c("REML", "ML")) {
  r <- rma.mv(yi, vi, random = ~ 1 | district/school, data = k11, method = m, control = tight)
  out[[paste0("intercept_", m)]] <- heterogeneity(r)
  r <- rma.mv(yi, vi, mods = ~ I(year - 2000), random = ~ 1 | district/school, data = k11, method = m,
              control = tight)
  out[[paste0("year_", m)]] <- heterogeneity(r)
}
# Weights of the three-level model (metafor weights(type = "diagonal" | "rowsum"), percent).
r <- rma.mv(yi, vi, random = ~ 1 | district/school, data = k11, method = "REML", control = tight)
out$weights <- list(diagonal = as.numeric(weights(r, type = "diagonal")), rowsum = as.numeric(weights(r, type = "rowsum")),
                    beta = as.numeric(r$beta))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/multilevel_heterogeneity.json")
