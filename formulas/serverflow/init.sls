include:
  - serverflow.minion
