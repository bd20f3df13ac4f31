# metafor's confint() for the metafor-habits tests (issue 22 item 9): profile-likelihood
# intervals of the variance components of rma.mv (dat.konstantopoulos2011, three levels)
# and confint.rma.uni's coefficient and Q-profile heterogeneity intervals (dat.bcg, RR).
# Run from the repository root:  Rscript tests/reference/confint_reference.R
# Writes tests/reference/confint_reference.json (committed; tests read it).
suppressMessages({library(metafor); library(jsonlite)})

k11 <- dat.konstantopoulos2011
ml <- rma.mv(yi, vi, random = ~ 1 | district/school, data = k11, method = "REML")
ci <- confint(ml, control = list(tol = 1e-12))  # uniroot tolerance (default 1.2e-4)
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
uni <- rma(yi, vi, data = bcg, method = "REML")
cu <- confint(uni, level = 90, control = list(tol = 1e-12))  # uniroot tolerance
out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  r_version = R.version.string,
  multilevel = list(
    sigma2 = as.numeric(ml$sigma2),
    district = as.numeric(ci[[1]]$random[1, ]),  # estimate, ci.lb, ci.ub of sigma^2.1
    school = as.numeric(ci[[2]]$random[1, ]),
    district_sigma = as.numeric(ci[[1]]$random[2, ]),
    school_sigma = as.numeric(ci[[2]]$random[2, ])
  ),
  uni90 = list(
    fixed = c(as.numeric(uni$b), predict(uni, level = 90)$ci.lb, predict(uni, level = 90)$ci.ub),
    tau2 = as.numeric(cu$random["tau^2", ]), tau = as.numeric(cu$random["tau", ]),
    i2 = as.numeric(cu$random["I^2(%)", ]), h2 = as.numeric(cu$random["H^2", ])
  )
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           "tests/reference/confint_reference.json")
cat("wrote tests/reference/confint_reference.json\n")
